"""Plain text from people: names and labels are one line of printable characters.

A CR/LF in a clinic name broke every later invitation email (a header injection refused by
Django's mailer after commit); a NUL breaks PostgreSQL text. Names refuse every control
character (C0, DEL, C1) and the Unicode line and paragraph separators.
"""

from __future__ import annotations

import re

from core.errors import ApplicationError, ErrorCode

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # keeps \t \n \r
CONTROL_MESSAGE = "Control characters are not allowed."


def has_control_characters(value: str, *, allow_line_breaks: bool = False) -> bool:
    """Free text (`allow_line_breaks`) may hold tabs and line breaks, names nothing of the kind."""
    return bool((_CONTROL_IN_TEXT if allow_line_breaks else _CONTROL).search(value or ""))


def single_line_validate(value: str, *, field: str) -> str:
    """The value, or a 400 `invalid_characters` naming the field."""
    if has_control_characters(value):
        raise ApplicationError(code=ErrorCode.INVALID_CHARACTERS, field=field, detail=CONTROL_MESSAGE)
    return value
