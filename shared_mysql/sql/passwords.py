"""Password generation and the server-side hash forms that keep plaintext out of statements and logs."""

from __future__ import annotations

import hashlib
import secrets
import string

# Letters and digits only: nothing that needs quoting in SQL, shell, URLs or .env files.
ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    while True:
        pw = "".join(secrets.choice(ALPHABET) for _ in range(length))
        # At least one of each class, as password-validation plugins ask.
        if any(c.islower() for c in pw) and any(c.isupper() for c in pw) and any(c.isdigit() for c in pw):
            return pw


def native_hash(password: str) -> str:
    """mysql_native_password's stored form: '*' + upper(hex(SHA1(SHA1(password))))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()
