"""The mail console: a browser page over the read API (``GET /console``), and its compose form (docs/console.md)."""
