# openssl verify (the system's OpenSSL) over the limbo cases ../limbo.rs can express, for
# comparison: limbo's harness/openssl flags (-x509_strict -partial_chain -auth_level 2, CRLs
# with -crl_check_all) and limbo.rs's mapping of purpose (from validation_kind or EKU),
# names and time (a case without one: now).
#
#   python3 openssl_anchor.py limbo.json.gz [DISAGREEMENTS_FILE]
import gzip, json, os, subprocess, sys, tempfile, time, collections
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

suite = json.load(gzip.open(sys.argv[1]))
now = int(time.time())
tmp = tempfile.TemporaryDirectory()
work = tmp.name

def expressible(t):
    if t["signature_algorithms"] or t["key_usage"]:
        return False
    eku = t["extended_key_usage"]
    return eku in ([], ["serverAuth"], ["clientAuth"])

def run(i_t):
    i, t = i_t
    d = os.path.join(work, str(i)); os.mkdir(d)
    def w(name, pems):
        p = os.path.join(d, name)
        with open(p, "w") as f: f.write("".join(pems))
        return p
    eku = t["extended_key_usage"]
    purpose = {"serverAuth": "sslserver", "clientAuth": "sslclient"}[eku[0]] if eku else \
        ("sslserver" if t["validation_kind"] == "SERVER" else "sslclient")
    args = ["openssl", "verify", "-x509_strict", "-partial_chain", "-auth_level", "2",
            "-purpose", purpose, "-CAfile", w("ca.pem", t["trusted_certs"])]
    if t["untrusted_intermediates"]:
        args += ["-untrusted", w("untrusted.pem", t["untrusted_intermediates"])]
    if t["crls"]:
        args += ["-CRLfile", w("crl.pem", t["crls"]), "-crl_check_all"]
    at = now if t["validation_time"] is None else int(datetime.fromisoformat(t["validation_time"]).timestamp())
    args += ["-attime", str(at)]
    if t["max_chain_depth"] is not None:
        args += ["-verify_depth", str(t["max_chain_depth"])]
    leaf = w("leaf.pem", [t["peer_certificate"]])
    names = ([t["expected_peer_name"]] if t["expected_peer_name"] else []) + t["expected_peer_names"]
    flag = {"DNS": "-verify_hostname", "IP": "-verify_ip", "RFC822": "-verify_email"}
    runs = [[flag[n["kind"]], n["value"]] for n in names] or [[]]
    for extra in runs:
        p = subprocess.run(args + extra + [leaf], capture_output=True, text=True)
        if p.returncode != 0:
            err = (p.stdout + p.stderr).strip().splitlines()
            return t["id"], False, " / ".join(l for l in err if "error" in l)[:200]
    return t["id"], True, ""

cases = [(i, t) for i, t in enumerate(suite["testcases"]) if expressible(t)]
with ThreadPoolExecutor(4) as ex:
    results = list(ex.map(run, cases))
by = {t["id"]: t for t in suite["testcases"]}
tally = collections.Counter()
disagree = []
for id_, ok, err in results:
    exp = by[id_]["expected_result"]
    tally[(exp, ok)] += 1
    if (exp == "SUCCESS") != ok:
        disagree.append(f"{id_}: expected {exp}, openssl {'OK' if ok else err}")
s_ok, s_no = tally[("SUCCESS", True)], tally[("SUCCESS", False)]
f_ok, f_no = tally[("FAILURE", False)], tally[("FAILURE", True)]
print(f"openssl {subprocess.run(['openssl','version'],capture_output=True,text=True).stdout.strip()}: {len(results)} cases")
print(f"expected SUCCESS: {s_ok} accepted, {s_no} refused ({100*s_ok/(s_ok+s_no):.1f}%)")
print(f"expected FAILURE: {f_ok} refused, {f_no} accepted ({100*f_ok/(f_ok+f_no):.1f}%)")
open(sys.argv[2] if len(sys.argv) > 2 else "openssl-disagreements.txt", "w").write("\n".join(disagree) + "\n")
