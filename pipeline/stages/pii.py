"""Mask email addresses, phone numbers and IP addresses, counting each kind per document.

Matches become `|||EMAIL_ADDRESS|||`, `|||PHONE_NUMBER|||` and `|||IP_ADDRESS|||`. Phone
matching favours precision: a number needs phone-like grouping (a `+` country code,
parentheses or separators between 3-3-4 style groups) or exactly ten bare digits, so dates,
prices, ISBNs and card numbers stay as they are.
"""

from __future__ import annotations

import ipaddress
import re

import pyarrow as pa

from pipeline.stages.base import StageOutput

EMAIL_PLACEHOLDER = "|||EMAIL_ADDRESS|||"
PHONE_PLACEHOLDER = "|||PHONE_NUMBER|||"
IP_PLACEHOLDER = "|||IP_ADDRESS|||"

EMAIL = re.compile(
    r"(?<![\w.+-])[a-z0-9](?:[a-z0-9._%+-]{0,63})@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b",
    re.IGNORECASE,
)

IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")

# Candidates only: every match is checked with the ipaddress module.
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:[0-9a-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])", re.IGNORECASE)

# A phone number in one of these shapes:
#   +1-212-456-7890, +44 20 7946 0958, +12312322334   (a country code, then 6-14 digits)
#   (845) 450 5693, (231) 232-2334                    (area code in parentheses)
#   212-456-7890, 212.456.7890, 212 456 7890          (3-3-4 groups)
#   2312322334                                        (ten bare digits)
PHONE = re.compile(
    r"""
    (?<![\w+$€£¥/.-])
    (?:
        \+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}            # country code and groups
      | \(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}                 # (845) 450 5693
      | \d{3}[ .-]\d{3}[ .-]\d{4}                       # 212-456-7890
      | \d{10}                                          # 2312322334
    )
    (?![\w/-]|\.\d)
    """,
    re.VERBOSE,
)

ISBN_CONTEXT = re.compile(r"isbn[\s:-]*$", re.IGNORECASE)


def is_ip_address(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def is_phone(match: re.Match, text: str) -> bool:
    digits = sum(char.isdigit() for char in match.group())
    if not 10 <= digits <= 15 and not (match.group().startswith("+") and 8 <= digits <= 15):
        return False
    # An ISBN-10 is ten digits too; skip numbers labelled as one.
    return not ISBN_CONTEXT.search(text[max(0, match.start() - 8):match.start()])


def mask_emails(text: str) -> tuple[str, int]:
    return EMAIL.subn(EMAIL_PLACEHOLDER, text)


def mask_ip_addresses(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        if not is_ip_address(match.group()):
            return match.group()
        count += 1
        return IP_PLACEHOLDER

    text = IPV4.sub(replace, text)
    text = IPV6.sub(replace, text)
    return text, count


def mask_phones(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        if not is_phone(match, text):
            return match.group()
        count += 1
        return PHONE_PLACEHOLDER

    return PHONE.sub(replace, text), count


class PiiMask:
    """Replaces `text` with its masked form and adds `pii_email`, `pii_phone`, `pii_ip_address`."""

    name = "pii"

    def __init__(self, email: bool = True, phone: bool = True, ip_address: bool = True, **unused):
        self.email = email
        self.phone = phone
        self.ip_address = ip_address

    def mask(self, text: str) -> tuple[str, int, int, int]:
        emails = phones = ips = 0
        # Emails first, so their digits are never read as phone numbers.
        if self.email:
            text, emails = mask_emails(text)
        if self.ip_address:
            text, ips = mask_ip_addresses(text)
        if self.phone:
            text, phones = mask_phones(text)
        return text, emails, phones, ips

    def __call__(self, table: pa.Table) -> StageOutput:
        masked, emails, phones, ips = [], [], [], []
        for text in table.column("text").to_pylist():
            text, email_count, phone_count, ip_count = self.mask(text)
            masked.append(text)
            emails.append(email_count)
            phones.append(phone_count)
            ips.append(ip_count)
        index = table.column_names.index("text")
        table = table.set_column(index, "text", pa.array(masked, pa.string()))
        table = table.append_column("pii_email", pa.array(emails, pa.int32()))
        table = table.append_column("pii_phone", pa.array(phones, pa.int32()))
        table = table.append_column("pii_ip_address", pa.array(ips, pa.int32()))
        return StageOutput(table, [None] * table.num_rows)
