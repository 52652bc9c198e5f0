#!/usr/bin/env python3
"""Write a CRL signed by CA_CERT/CA_KEY that revokes COUNT random serials.

    bench/make_crl.py ca.crt ca.key 1000000 big.crl

For the "handshake cost with a CRL of 1,000,000 revoked serials" figure of bench/compare.
`mtls pki revoke` revokes what the CA issued; a million-entry CRL is made here with
`openssl ca -gencrl` from a synthetic index (serials that were never issued, which is
exactly the lookup a real client's serial faces).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main():
    ca_cert, ca_key, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        index = tmp / "index.txt"
        with open(index, "w") as f:
            for _ in range(count):
                serial = os.urandom(16).hex().upper()
                f.write(f"R\t301231235959Z\t250101000000Z,keyCompromise\t{serial}\tunknown\t/CN=revoked\n")
        (tmp / "crlnumber").write_text("01\n")
        conf = tmp / "ca.cnf"
        conf.write_text(f"""
[ ca ]
default_ca = bench
[ bench ]
database = {index}
crlnumber = {tmp / 'crlnumber'}
default_md = sha256
default_crl_days = 7
""")
        subprocess.run(["openssl", "ca", "-batch", "-gencrl", "-config", str(conf), "-cert", ca_cert,
                        "-keyfile", ca_key, "-out", out], check=True, capture_output=True)


if __name__ == "__main__":
    main()
