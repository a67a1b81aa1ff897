"""What tests share beyond fixtures: signing as SendGrid signs, events as AWS sends them, test-only readers."""
