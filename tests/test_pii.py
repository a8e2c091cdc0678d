"""PII masking on the labelled sentences in the shared data and on hand-written cases."""

import re

import pytest

from pipeline.stages.pii import PiiMask

TAGS = {"email": "|||EMAIL_ADDRESS|||", "phone_number": "|||PHONE_NUMBER|||", "ip_address": "|||IP_ADDRESS|||"}


def expected_and_plain(line: str) -> tuple[str, str]:
    expected = line
    for tag, placeholder in TAGS.items():
        expected = re.sub(rf"<{tag}>.*?</{tag}>", placeholder, expected)
    strip = lambda text: re.sub(r"</?[a-z_]+>", "", text)
    return strip(expected), strip(line)


@pytest.mark.parametrize("name", ["emails.txt", "phone_numbers.txt", "ip_address.txt", "multiple.txt",
                                  "card_no.txt", "ssn.txt", "birthdates.txt", "names.txt", "address.txt"])
def test_labelled_files(shared_data, name):
    masker = PiiMask()
    lines = [line for line in (shared_data / "pii" / name).read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        expected, plain = expected_and_plain(line)
        assert masker.mask(plain)[0] == expected


@pytest.mark.parametrize("text,expected", [
    ("Mail John.Doe@Example.COM today", "Mail |||EMAIL_ADDRESS||| today"),
    ("ops+alerts@sub.example.co.uk.", "|||EMAIL_ADDRESS|||."),
    ("Call +44 20 7946 0958 now", "Call |||PHONE_NUMBER||| now"),
    ("Call (212) 555-0199.", "Call |||PHONE_NUMBER|||."),
    ("Call 212.555.0199 or 212 555 0199", "Call |||PHONE_NUMBER||| or |||PHONE_NUMBER|||"),
    ("Host 8.8.8.8, gateway 192.168.1.1", "Host |||IP_ADDRESS|||, gateway |||IP_ADDRESS|||"),
    ("v6 2001:db8::8a2e:370:7334 here", "v6 |||IP_ADDRESS||| here"),
])
def test_masks(text, expected):
    assert PiiMask().mask(text)[0] == expected


@pytest.mark.parametrize("text", [
    "Published 2020-01-15, updated 15.01.2020 at 12:30:45",
    "Price $1,234,567.89 or €2499.00",
    "ISBN 0306406152 and ISBN 978-3-16-148410-0",
    "Version 1.2.3.4.5 and 999.1.1.1",
    "Call 555-1234 (seven digits, no area code)",
    "Order number 20200115123",
    "Card 4929-3813-3266-4295",
])
def test_leaves_non_pii(text):
    assert PiiMask().mask(text)[0] == text


def test_counts_per_kind():
    masked, emails, phones, ips = PiiMask().mask("a@b.com c@d.org +1-212-456-7890 10.0.0.1")
    assert (emails, phones, ips) == (2, 1, 1)


def test_kinds_can_be_switched_off():
    assert PiiMask(phone=False).mask("+1-212-456-7890")[0] == "+1-212-456-7890"
