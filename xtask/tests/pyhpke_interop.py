"""pyhpke side of the HPKE interop test (xtask/tests/hpke.rs): Ampoule's suite, X25519 / HKDF-SHA256 / AES-256-GCM,
base mode. Arguments and results are hex.

  keygen                      -> "<sk> <pk>"
  open <sk> <enc> <ct> <info> <aad>  -> "<plaintext>"
  seal <pk> <pt> <info> <aad>        -> "<enc> <ct>"
"""
import sys

from pyhpke import AEADId, CipherSuite, KDFId, KEMId

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


def main(argv):
    op, args = argv[0], [bytes.fromhex(a) for a in argv[1:]]
    if op == "keygen":
        import os
        pair = SUITE.kem.derive_key_pair(os.urandom(32))
        print(pair.private_key.to_private_bytes().hex(), pair.public_key.to_public_bytes().hex())
    elif op == "open":
        sk, enc, ct, info, aad = args
        recipient = SUITE.create_recipient_context(enc, SUITE.kem.deserialize_private_key(sk), info=info)
        print(recipient.open(ct, aad=aad).hex())
    elif op == "seal":
        pk, pt, info, aad = args
        enc, sender = SUITE.create_sender_context(SUITE.kem.deserialize_public_key(pk), info=info)
        print(enc.hex(), sender.seal(pt, aad=aad).hex())
    else:
        raise SystemExit(f"unknown operation {op}")


if __name__ == "__main__":
    main(sys.argv[1:])
