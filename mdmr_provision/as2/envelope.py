"""CMS EnvelopedData / AuthEnvelopedData encryption and CompressedData (RFC 5652, 5083, 3274).

Encryption streams the caller's pieces (buffers, or a file read in steps) through the cipher
straight into one preallocated output buffer (``update_into``), and decryption walks the DER
by offsets (:mod:`mdmr_provision.as2.der`) into one output buffer, or, for a caller that hands
its buffer over, into that same buffer (``in_place``): a large payload is held once or twice,
never more.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher as CryptoCipher
from cryptography.hazmat.primitives.ciphers import CipherContext, algorithms, modes

from mdmr_provision.as2 import der, pieces
from mdmr_provision.as2.algorithms import Cipher
from mdmr_provision.as2.cms import (
    describe,
    hash_algorithm,
    issued_as,
    known_digest,
    oaep_parameters,
)
from mdmr_provision.as2.der import Buffer
from mdmr_provision.as2.errors import DecryptionFailed, UnexpectedProcessingError
from mdmr_provision.errors import AS2Error
from mdmr_provision.keys import PrivateKey

_CHUNK = 1 << 20
_OID_DATA = "1.2.840.113549.1.7.1"
_OID_ENVELOPED = "1.2.840.113549.1.7.3"
_OID_AUTH_ENVELOPED = "1.2.840.113549.1.9.16.1.23"

_CBC_OIDS = {
    Cipher.AES128: "aes128_cbc",
    Cipher.AES192: "aes192_cbc",
    Cipher.AES256: "aes256_cbc",
    Cipher.TDES: "tripledes_3key",
}
_GCM_OIDS = {
    Cipher.AES128_GCM: "2.16.840.1.101.3.4.1.6",
    Cipher.AES256_GCM: "2.16.840.1.101.3.4.1.46",
}
_BY_NAME = {
    "aes128_cbc": Cipher.AES128,
    "aes192_cbc": Cipher.AES192,
    "aes256_cbc": Cipher.AES256,
    "tripledes_3key": Cipher.TDES,
    "aes128_gcm": Cipher.AES128_GCM,
    "aes192_gcm": None,
    "aes256_gcm": Cipher.AES256_GCM,
}


class GcmParameters(core.Sequence):  # type: ignore[misc]
    """RFC 5084 GCMParameters (asn1crypto has no spec for them)."""

    _fields = [  # noqa: RUF012 - asn1crypto's declarative spec
        ("aes_nonce", core.OctetString),
        ("aes_icv_len", core.Integer, {"default": 12}),
    ]


def _block_cipher(cipher: Cipher, key: bytes) -> algorithms.AES | TripleDES:
    return TripleDES(key) if cipher is Cipher.TDES else algorithms.AES(key)


def _recipient(cert: x509.Certificate, cek: bytes) -> cms.RecipientInfo:
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise AS2Error(f"cannot encrypt for {describe(cert)}: only RSA certificates are supported")
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return cms.RecipientInfo(
        name="ktri",
        value={
            "version": "v0",
            "rid": cms.RecipientIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number},
            ),
            "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
            "encrypted_key": public.encrypt(cek, padding.PKCS1v15()),
        },
    )


def encrypt(parts: Sequence[pieces.Piece], cert: x509.Certificate, cipher: Cipher) -> bytearray:
    """DER ContentInfo (enveloped, or auth-enveloped for GCM) of ``parts`` concatenated."""
    total = sum(len(p) for p in parts)
    cek = os.urandom(cipher.key_size)
    recipients = cms.RecipientInfos([_recipient(cert, cek)]).dump()
    gcm = cipher in _GCM_OIDS
    ctx: CipherContext
    if gcm:
        nonce = os.urandom(12)
        params = GcmParameters({"aes_nonce": nonce, "aes_icv_len": 16}).dump()
        alg_der = der.tlv(der.SEQUENCE, core.ObjectIdentifier(_GCM_OIDS[cipher]).dump() + params)
        ctx = CryptoCipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
        pad_len = 0
    else:
        block = 8 if cipher is Cipher.TDES else 16
        iv = os.urandom(block)
        alg_der = algos.EncryptionAlgorithm(
            {"algorithm": _CBC_OIDS[cipher], "parameters": core.OctetString(iv)}
        ).dump()
        ctx = CryptoCipher(_block_cipher(cipher, cek), modes.CBC(iv)).encryptor()
        pad_len = block - total % block
    cipher_len = total + pad_len
    content_type = core.ObjectIdentifier(_OID_DATA).dump()
    eci_head_inner = content_type + alg_der
    eci_len = len(eci_head_inner) + len(der.header(0x80, cipher_len)) + cipher_len
    version = core.Integer(2 if gcm else 0).dump()
    tail = der.tlv(der.OCTET_STRING, b"\x00" * 16) if gcm else b""
    body_len = len(version) + len(recipients) + len(der.header(der.SEQUENCE, eci_len)) + eci_len
    body_len += len(tail)
    inner = der.header(der.SEQUENCE, body_len)
    outer_oid = core.ObjectIdentifier(_OID_AUTH_ENVELOPED if gcm else _OID_ENVELOPED).dump()
    explicit = der.header(0xA0, len(inner) + body_len)
    top_len = len(outer_oid) + len(explicit) + len(inner) + body_len
    prefix = b"".join(
        (
            der.header(der.SEQUENCE, top_len),
            outer_oid,
            explicit,
            inner,
            version,
            recipients,
            der.header(der.SEQUENCE, eci_len),
            eci_head_inner,
            der.header(0x80, cipher_len),
        )
    )
    out = bytearray(len(prefix) + cipher_len + len(tail) + 32)
    view = memoryview(out)
    view[: len(prefix)] = prefix
    pos = len(prefix)
    for part in (*parts, bytes([pad_len]) * pad_len):
        for chunk in pieces.steps(part, _CHUNK):
            pos += ctx.update_into(chunk, view[pos:])
    pos += len(ctx.finalize())
    if gcm:
        tag = ctx.tag  # type: ignore[attr-defined]
        view[pos : pos + len(tail)] = der.tlv(der.OCTET_STRING, tag)
        pos += len(tail)
    view.release()
    del out[pos:]
    return out


def _check_gcm(alg_name: str, nonce: bytes, icv_len: int, tag: bytes) -> None:
    """A one-line reason for GCM parameters outside RFC 5084's (12-byte nonce, 12-16 byte tag)."""
    what = alg_name.replace("_gcm", "").upper() + "-GCM"
    if len(nonce) != 12:
        raise DecryptionFailed(
            f"{what} nonce of {len(nonce)} bytes is not supported (RFC 5084: 12 bytes)"
        )
    if not 12 <= icv_len <= 16:
        raise DecryptionFailed(
            f"{what} tag of {icv_len} bytes is not supported (RFC 5084: 12 to 16 bytes)"
        )
    if len(tag) != icv_len:
        raise DecryptionFailed(
            f"{what} tag is {len(tag)} bytes but the parameters say {icv_len}"
        )


def _decrypt_key(info: cms.RecipientInfo, key: PrivateKey) -> bytes:
    alg = info["key_encryption_algorithm"]
    name = alg["algorithm"].native
    encrypted_key = info["encrypted_key"].native
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DecryptionFailed("our decryption key is not RSA; cannot unwrap the content key")
    pad: padding.AsymmetricPadding
    if name == "rsaes_pkcs1v15":
        pad = padding.PKCS1v15()
    elif name == "rsaes_oaep":
        params = oaep_parameters(alg["parameters"])
        hash_name = params["hash_algorithm"]["algorithm"].native
        mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        pad = padding.OAEP(
            mgf=padding.MGF1(hash_algorithm(known_digest(mgf_hash))),
            algorithm=hash_algorithm(known_digest(hash_name)),
            label=None,
        )
    else:
        raise DecryptionFailed(f"unsupported key transport algorithm {name}")
    try:
        return key.decrypt(encrypted_key, pad)
    except ValueError:
        raise DecryptionFailed(
            "cannot decrypt the content key: the message was encrypted for another key"
        ) from None


def _rid_matches(rid: cms.RecipientIdentifier, cert: x509.Certificate) -> bool:
    if rid.name == "issuer_and_serial_number":
        return issued_as(rid.chosen, cert)
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return bool(rid.chosen.native == ski)


def _describe_rid(rid: cms.RecipientIdentifier) -> str:
    if rid.name == "issuer_and_serial_number":
        issuer = rid.chosen["issuer"].human_friendly
        return f"serial {rid.chosen['serial_number'].native:x} issued by {issuer}"
    return f"key id {rid.chosen.native.hex()}"


def decrypt(data: Buffer, cert: x509.Certificate, key: PrivateKey, *,
            in_place: bool = False) -> bytearray:
    """Plaintext of a DER/BER EnvelopedData or AuthEnvelopedData ContentInfo.

    With ``in_place`` (``data`` must be a bytearray no one else views) the plaintext is
    written over the ciphertext it came from and ``data`` itself, cut to the plaintext, is
    returned: a large message is then held once.  On failure ``data`` holds garbage.
    """
    target: bytearray | None = None
    if in_place:
        if not isinstance(data, bytearray):
            raise TypeError("in-place decryption needs a bytearray")
        target = data
    try:
        out, size = _decrypt(memoryview(data), cert, key, target)
    except UnexpectedProcessingError as exc:
        # A damaged envelope cannot be decrypted: that is what the sender must hear.
        raise DecryptionFailed(f"cannot decrypt: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, UnsupportedAlgorithm) as exc:
        raise DecryptionFailed(f"cannot decrypt: {exc}") from None
    # Every view of ``out`` ended with _decrypt's frame, so it can be cut to size now.
    del out[size:]
    return out


def _decrypt(buf: memoryview, cert: x509.Certificate, key: PrivateKey,
             into: bytearray | None) -> tuple[bytearray, int]:
    top = der.read(buf, 0, len(buf))
    parts = der.children(buf, top)
    if len(parts) < 2 or parts[0].tag != der.OID:
        raise UnexpectedProcessingError("malformed CMS structure: not a ContentInfo")
    kind = core.ObjectIdentifier.load(parts[0].raw(buf)).dotted
    if kind not in (_OID_ENVELOPED, _OID_AUTH_ENVELOPED):
        raise DecryptionFailed(f"expected CMS enveloped-data, got {kind}")
    body = der.children(buf, der.children(buf, parts[1])[0])
    fields = [f for f in body if f.tag != 0xA0]  # drop originatorInfo
    recipients = cms.RecipientInfos.load(fields[1].raw(buf))
    eci = der.children(buf, fields[2])
    alg = algos.EncryptionAlgorithm.load(eci[1].raw(buf)) if len(eci) > 1 else None
    if alg is None or len(eci) < 3:
        raise DecryptionFailed("enveloped-data carries no encrypted content")
    chosen = None
    for info in recipients:
        if info.name == "ktri" and _rid_matches(info.chosen["rid"], cert):
            chosen = info.chosen
    if chosen is None:
        ids = ", ".join(
            _describe_rid(i.chosen["rid"]) if i.name == "ktri" else i.name for i in recipients
        )
        raise DecryptionFailed(f"message is not encrypted for {describe(cert)} (recipients: {ids})")
    cek = _decrypt_key(chosen, key)
    alg_name = alg["algorithm"].native
    cipher = _BY_NAME.get(alg_name)
    if alg_name in ("aes192_gcm", "aes128_gcm", "aes256_gcm"):
        params = GcmParameters.load(alg["parameters"].dump())
        mac_item = next((f for f in fields[3:] if f.tag == der.OCTET_STRING), None)
        if mac_item is None:
            raise DecryptionFailed("auth-enveloped-data has no MAC")
        tag = bytes(buf[mac_item.start : mac_item.end])
        nonce = params["aes_nonce"].native
        _check_gcm(alg_name, nonce, params["aes_icv_len"].native, tag)
        mode: modes.Mode = modes.GCM(nonce, tag, min_tag_length=12)
        algorithm: algorithms.AES | TripleDES = algorithms.AES(cek)
        block = 0
    elif cipher is not None:
        iv = alg["parameters"].native
        algorithm = _block_cipher(cipher, cek)
        mode = modes.CBC(iv)
        block = 8 if cipher is Cipher.TDES else 16
    else:
        raise DecryptionFailed(f"unsupported content cipher {alg_name}")
    chunks = der.octets(buf, eci[2])
    # In place, each step is decrypted into a scratch buffer and copied back to where the
    # plaintext so far ends: the cipher never gives out more than it has taken in, so that
    # only overwrites ciphertext already read.
    out = into if into is not None else bytearray(sum(len(c) for c in chunks) + 32)
    scratch = memoryview(bytearray(_CHUNK + 32)) if into is not None else None
    view = memoryview(out)
    dctx: CipherContext = CryptoCipher(algorithm, mode).decryptor()  # type: ignore[misc]
    pos = 0
    try:
        if auth_attrs := next((f for f in fields[3:] if f.tag == 0xA1), None):
            aad = b"\x31" + auth_attrs.raw(buf)[1:]
            dctx.authenticate_additional_data(aad)  # type: ignore[attr-defined]
        for chunk in chunks:
            for off in range(0, len(chunk), _CHUNK):
                if scratch is None:
                    pos += dctx.update_into(chunk[off : off + _CHUNK], view[pos:])
                else:
                    n = dctx.update_into(chunk[off : off + _CHUNK], scratch)
                    view[pos : pos + n] = scratch[:n]
                    pos += n
        last = dctx.finalize()
        view[pos : pos + len(last)] = last
        pos += len(last)
    except InvalidTag:
        raise DecryptionFailed(
            "AES-GCM authentication tag does not match: content altered"
        ) from None
    except ValueError as exc:
        raise DecryptionFailed(f"cannot decrypt the content: {exc}") from None
    if block:
        pad = out[pos - 1] if pos else 0
        if not 1 <= pad <= block or out[pos - pad : pos] != bytes([pad]) * pad:
            raise DecryptionFailed("bad padding after decryption: wrong key or content altered")
        pos -= pad
    view.release()
    return out, pos


def compress(data: Buffer) -> bytes:
    """DER ContentInfo of RFC 3274 CompressedData (zlib) around ``data``."""
    return compress_packed(zlib.compress(data))


def compress_packed(compressed: bytes) -> bytes:
    """DER ContentInfo of CompressedData around already zlib-compressed bytes."""
    value = cms.CompressedData(
        {
            "version": "v0",
            "compression_algorithm": {"algorithm": "zlib"},
            "encap_content_info": {"content_type": "data", "content": compressed},
        }
    )
    return bytes(cms.ContentInfo({"content_type": "compressed_data", "content": value}).dump())


#: Inflated size refused by default (the receiver passes its configured message size).
MAX_INFLATED = 64 * 1024 * 1024
_INFLATE_STEP = 1 << 20
_FEED_STEP = 1 << 16


def _inflate(packed: bytes, into: memoryview | None, max_size: int) -> int:
    """Stream ``packed`` through zlib, a slice of input and at most one step of output at a
    time; return the inflated size (writing it to ``into`` when given), refusing beyond
    ``max_size``."""
    z = zlib.decompressobj()
    size = 0
    view = memoryview(packed)
    for start in range(0, len(view), _FEED_STEP):
        data: bytes | memoryview = view[start : start + _FEED_STEP]
        while True:
            chunk = z.decompress(data, _INFLATE_STEP)
            if size + len(chunk) > max_size:
                raise UnexpectedProcessingError(
                    f"compressed content inflates beyond the {max_size}-byte limit"
                )
            if into is not None:
                into[size : size + len(chunk)] = chunk
            size += len(chunk)
            data = z.unconsumed_tail
            # A full step may leave output pending inside zlib even with no input left.
            if not data and len(chunk) < _INFLATE_STEP:
                break
    if not z.eof:
        raise UnexpectedProcessingError("cannot decompress: the zlib stream is truncated")
    return size


def decompress(data: Buffer, *, max_size: int = MAX_INFLATED) -> bytearray:
    """The content of a CompressedData ContentInfo, refused when it inflates beyond
    ``max_size`` bytes.

    A few kilobytes can inflate to gigabytes, and this runs before any signature or partner
    check, so the stream is first inflated without keeping the output (memory stays at one
    step) to learn its size; only content within the limit is inflated again into one buffer
    of exactly that size.
    """
    try:
        info = cms.ContentInfo.load(bytes(data))
        if info["content_type"].native != "compressed_data":
            raise UnexpectedProcessingError(
                f"expected CMS compressed-data, got {info['content_type'].native}"
            )
        inner = info["content"]
        if inner["compression_algorithm"]["algorithm"].native != "zlib":
            raise UnexpectedProcessingError("unsupported compression algorithm (only zlib)")
        packed = inner["encap_content_info"]["content"].native
        if not isinstance(packed, bytes):
            raise UnexpectedProcessingError("compressed-data carries no content")
        out = bytearray(_inflate(packed, None, max_size))
        _inflate(packed, memoryview(out), max_size)
        return out
    except AS2Error:
        raise
    except (ValueError, TypeError, KeyError, zlib.error, RecursionError) as exc:
        raise UnexpectedProcessingError(f"cannot decompress: {exc}") from None
