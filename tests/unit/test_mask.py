"""Review: keys that name a secret in the usual spellings are masked; ordinary keys are not."""

from __future__ import annotations

import pytest

from mdmr_provision.mask import SENSITIVE, is_secret_key, mask_mapping


@pytest.mark.parametrize("key", [
    "passphrase", "password", "private_key", "client_secret", "token",
    "api_key", "apiKey", "API-KEY", "privkey", "private key", "credentials",
    "Authorization", "proxy-authorization", "cookie", "pwd", "key_pass", "pass",
    "storepass", "keypass",
])
def test_secret_looking_keys_are_masked(key: str) -> None:
    assert is_secret_key(key)
    assert mask_mapping({"outer": {key: "hunter2"}}) == {"outer": {key: SENSITIVE}}


@pytest.mark.parametrize("key", [
    "fingerprint", "bypass", "passed", "passes", "compass", "key", "key_file", "cert",
    "common_name", "message_id", "author", "keys",
])
def test_ordinary_keys_are_shown(key: str) -> None:
    assert not is_secret_key(key)
