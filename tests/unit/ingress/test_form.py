"""The form parser: SendGrid's LF samples, real CRLF bodies, and agreement with requests-toolbelt."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests_toolbelt import MultipartEncoder
from requests_toolbelt.multipart.decoder import MultipartDecoder

from chalicelib.errors import MalformedMailError, PayloadTooLargeError, UnsupportedMediaTypeError
from chalicelib.ingress import form as multipart
from tests.conftest import fixture_body
from tests.support.examples import examples


def test_sendgrid_sample_with_bare_lf_line_ends_yields_every_field() -> None:
    body, content_type = fixture_body("default_data.txt")
    form = multipart.parse(body, content_type)
    assert sorted(form.fields) == sorted(
        ["headers", "dkim", "to", "html", "from", "text", "sender_ip", "envelope",
         "attachments", "subject", "charsets", "SPF"]
    )
    assert form.fields["subject"] == b"Testing non-raw"
    assert form.fields["text"] == b"Hello Twilio SendGrid!\n"
    assert form.fields["dkim"] == b"{@sendgrid.com : pass}"
    assert form.files == {}


def test_crlf_body_with_binary_file_keeps_every_byte() -> None:
    data = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    encoder = MultipartEncoder(
        fields=[("text", "héllo"), ("attachment1", ("a.bin", data, "application/octet-stream"))]
    )
    form = multipart.parse(encoder.to_string(), encoder.content_type)
    assert form.fields == {"text": "héllo".encode()}
    part = form.files["attachment1"]
    assert (part.name, part.filename, part.content_type) == ("attachment1", "a.bin", "application/octet-stream")
    assert bytes(part.data) == data


def test_file_contents_are_views_of_the_body_not_copies() -> None:
    encoder = MultipartEncoder(fields=[("attachment1", ("a.bin", b"x" * 1000, "application/pdf"))])
    body = encoder.to_string()
    part = multipart.parse(body, encoder.content_type).files["attachment1"]
    assert isinstance(part.data, memoryview)
    assert part.data.obj is body


def test_empty_field_and_preamble_and_epilogue() -> None:
    body = b"preamble\r\n--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n\r\n--b--\r\nepilogue"
    form = multipart.parse(body, "multipart/form-data; boundary=b")
    assert form.fields == {"text": b""}


def test_quoted_boundary_and_rfc2231_file_name() -> None:
    body = (
        b'--a b\r\nContent-Disposition: form-data; name="attachment1"; '
        b"filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\r\n"
        b"Content-Type: application/pdf\r\n\r\n%PDF\r\n--a b--\r\n"
    )
    form = multipart.parse(body, 'multipart/form-data; boundary="a b"')
    assert form.files["attachment1"].filename == "請求書.pdf"
    assert bytes(form.files["attachment1"].data) == b"%PDF"


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "text/plain; boundary=x", "multipart/mixed; boundary=x"],
)
def test_anything_but_form_data_is_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        multipart.parse(b"--x\r\n\r\n--x--", content_type)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"--b\r\n\r\nx\r\n--b--", "multipart/form-data", "multipart boundary is missing or invalid"),
        (b"no boundary here", "multipart/form-data; boundary=b", "multipart body has no opening boundary"),
        (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx", "multipart/form-data; boundary=b",
         "multipart body ends without a closing boundary"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "multipart/form-data; boundary=b",
         "multipart part has no form-data name"),
    ],
)
def test_unreadable_bodies_are_malformed(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(MalformedMailError) as caught:
        multipart.parse(body, content_type)
    assert caught.value.message == message


def test_too_many_parts_is_refused() -> None:
    parts = [f'--b\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\nx\r\n'.encode()
             for n in range(multipart.MAX_PARTS + 1)]
    with pytest.raises(PayloadTooLargeError):
        multipart.parse(b"".join(parts) + b"--b--\r\n", "multipart/form-data; boundary=b")
    assert len(multipart.parse(b"".join(parts[:-1]) + b"--b--\r\n", "multipart/form-data; boundary=b").fields) == 1000


@pytest.mark.parametrize(
    "second",
    [
        b'Content-Disposition: form-data; name="SPF"\r\n\r\npass',  # a plain field again
        b'Content-Disposition: form-data; name="SPF"; filename="x"\r\n\r\npass',  # the name as a file
        b'Content-Disposition: form-data; name = "SPF"\r\n\r\npass',  # the slow reading of the same name
    ],
)
def test_a_field_named_twice_is_refused_whichever_way_it_is_written(second: bytes) -> None:
    body = (b'--b\r\nContent-Disposition: form-data; name="SPF"\r\n\r\nfail\r\n--b\r\n' + second
            + b"\r\n--b--\r\n")
    with pytest.raises(MalformedMailError, match="the form carries a field twice"):
        multipart.parse(body, "multipart/form-data; boundary=b")


field_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=12)


@settings(max_examples=examples(150), deadline=None)
@given(
    st.dictionaries(field_names, st.binary(max_size=300), min_size=1, max_size=6),
    st.dictionaries(field_names, st.binary(max_size=300), max_size=3),
)
def test_agrees_with_requests_toolbelt_on_every_crlf_body(
    fields: dict[str, bytes], files: dict[str, bytes]
) -> None:
    files = {f"file_{name}": data for name, data in files.items()}
    encoder = MultipartEncoder(
        fields=[(k, v) for k, v in fields.items()]
        + [(k, (f"{k}.bin", v, "application/octet-stream")) for k, v in files.items()]
    )
    body = encoder.to_string()
    ours = multipart.parse(body, encoder.content_type)
    theirs = MultipartDecoder(body, encoder.content_type)
    expected: dict[str, bytes] = {}
    for part in theirs.parts:
        disposition = part.headers[b"Content-Disposition"].decode()
        name = disposition.split('name="', 1)[1].split('"', 1)[0]
        expected[name] = part.content
    got = {**ours.fields, **{name: bytes(part.data) for name, part in ours.files.items()}}
    assert got == expected


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["b", "xYzZY", "--", "a b"]))
def test_arbitrary_bytes_never_raise_anything_but_our_errors(body: bytes, boundary: str) -> None:
    with contextlib.suppress(MalformedMailError, PayloadTooLargeError):
        multipart.parse(body, f'multipart/form-data; boundary="{boundary}"')


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=0, max_size=8)
_quoted = st.text(alphabet='abcXYZ 0-9._/\\;=*"é請', max_size=10).map(lambda text: '"' + text + '"')
_value = st.one_of(_token, _quoted)
_param = st.tuples(st.sampled_from(["name", "NAME", "filename", "Filename", "filename*", "size", "x"]), _value)


@st.composite
def _header_blocks(draw: st.DrawFn) -> bytes:
    params = draw(st.lists(_param, max_size=4))
    spacing = draw(st.sampled_from(["; ", ";", " ; ", ";  "]))
    disposition = draw(st.sampled_from(["form-data", "Form-Data", "attachment"])) + "".join(
        f"{spacing}{key}={value}" for key, value in params
    )
    lines = []
    if draw(st.booleans()):
        lines.append(f"{draw(st.sampled_from(['Content-Disposition', 'content-disposition']))}: {disposition}")
    if draw(st.booleans()):
        lines.append("Content-Type: " + draw(st.sampled_from(
            ["text/plain", "application/pdf", 'image/png; name="a.png"', "text/plain; charset=utf-8"])))
    if draw(st.booleans()):
        lines.insert(0, " folded continuation")
    return "\r\n".join(lines).encode()


@settings(max_examples=examples(400), deadline=None)
@given(_header_blocks())
def test_fast_part_headers_agree_with_the_email_package(block: bytes) -> None:
    assert multipart._part_headers(block) == multipart._slow_headers(block)


def test_fields_are_cut_from_the_body_on_reading_and_found_in_place_by_span() -> None:
    message = b"Subject: hi\r\n\r\n" + b"x" * 100_000
    encoder = MultipartEncoder(fields=[("to", "a@example.com"), ("email", message), ("subject", "hi")])
    body = encoder.to_string()
    form = multipart.parse(body, encoder.content_type)
    assert list(form.fields) == ["to", "email", "subject"]
    assert len(form.fields) == 3
    assert "email" in form.fields and "text" not in form.fields
    assert form.fields.get("text") is None
    assert form.fields.get("text", b"none") == b"none"
    assert form.fields.get("to") == b"a@example.com"
    assert form.fields == {"to": b"a@example.com", "email": message, "subject": b"hi"}
    with pytest.raises(KeyError):
        form.fields["text"]
    span = form.span("email")
    assert span is not None
    source, start, end = span
    assert source is body  # the request body itself: the message is not copied
    assert source[start:end] == message
    assert form.span("text") is None
