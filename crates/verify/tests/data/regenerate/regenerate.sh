#!/usr/bin/env bash
# Regenerate crates/verify/tests/data/limbo.json.gz from x509-limbo (and, when its
# limbo/_assets/bettertls.json is not at hand, from Netflix's BetterTLS). See ../README.md.
#
#   LIMBO=<git dir or URL> BETTERTLS=<git dir or URL> regenerate.sh
#
# Needs: git, python3 (3.11+, venv), gzip; Go 1.23+ only when bettertls.json must be made.
set -euo pipefail

LIMBO=${LIMBO:-https://github.com/C2SP/x509-limbo}
LIMBO_COMMIT=${LIMBO_COMMIT:-8a2e6f41023b1716dc16fe63335e4bb972e4c3f6}
BETTERTLS=${BETTERTLS:-https://github.com/Netflix/bettertls}
BETTERTLS_COMMIT=${BETTERTLS_COMMIT:-e1e99e35307478b568b81ee5f8cc2cb4abbce402}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/../limbo.json.gz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A work tree of one commit, blob by blob (fetched lazily from a URL): a partial copy may
# lack some blobs (the mirror this was made from lacked limbo/_assets/bettertls.json), and
# those are left out. The old compiled limbo.json is never needed.
checkout() { # REPO COMMIT DEST
    git clone --quiet --bare --filter=blob:none "$1" "$3.git" 2>/dev/null ||
        git clone --quiet --bare "$1" "$3.git"
    mkdir -p "$3"
    git -C "$3.git" ls-tree -r "$2" | while read -r _ _ sha path; do
        [[ $path == limbo.json ]] && continue
        mkdir -p "$3/$(dirname "$path")"
        git -C "$3.git" cat-file blob "$sha" >"$3/$path" 2>/dev/null || rm -f "$3/$path"
    done
}

checkout "$LIMBO" "$LIMBO_COMMIT" "$work/limbo"

if [[ ! -s $work/limbo/limbo/_assets/bettertls.json ]]; then
    # BetterTLS's own `bettertls export-tests`, reduced to the standard library and
    # google/uuid (its test executor pulls in logrus and protobuf). Fresh keys each run.
    checkout "$BETTERTLS" "$BETTERTLS_COMMIT" "$work/bettertls"
    mkdir -p "$work/bettertls/test-suites/cmd/limbo-export"
    cp "$here/bettertls_export.go" "$work/bettertls/test-suites/cmd/limbo-export/main.go"
    (
        cd "$work/bettertls"
        # Debian's golang-github-google-uuid-dev, when the module proxy is out of reach.
        if [[ -d /usr/share/gocode/src/github.com/google/uuid ]]; then
            printf 'module github.com/Netflix/bettertls\n\ngo 1.23\n\nrequire github.com/google/uuid v1.3.0\n\nreplace github.com/google/uuid => /usr/share/gocode/src/github.com/google/uuid\n' >go.mod
            rm -f go.sum
            export GOPROXY=off GOFLAGS=-mod=mod
        fi
        GOTOOLCHAIN=local go build -o "$work/bettertls-export" ./test-suites/cmd/limbo-export
    )
    "$work/bettertls-export" "$BETTERTLS_COMMIT" >"$work/limbo/limbo/_assets/bettertls.json"
fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet 'pydantic~=2.13' 'cryptography~=46.0' 'pyyaml~=6.0' \
    pyOpenSSL certifi 'requests~=2.33' Jinja2
# --no-deps: certvalidator and oscrypto (from git) are for limbo's Python harness only.
"$work/venv/bin/pip" install --quiet --no-deps -e "$work/limbo"
(cd "$work/limbo" && "$work/venv/bin/limbo" compile -o "$work/limbo.json" 2>/dev/null)

# Drop what the harness does not read (peer_certificate_key) and the indentation.
"$work/venv/bin/python" - "$work/limbo.json" "$work/limbo.min.json" <<'PY'
import json, sys
KEEP = ["id", "description", "features", "importance", "validation_kind", "trusted_certs",
        "untrusted_intermediates", "peer_certificate", "validation_time",
        "signature_algorithms", "key_usage", "extended_key_usage", "expected_result",
        "expected_peer_name", "expected_peer_names", "max_chain_depth", "crls",
        "conflicts_with"]
suite = json.load(open(sys.argv[1]))
suite["testcases"] = [{k: t[k] for k in KEEP if k in t} for t in suite["testcases"]]
json.dump(suite, open(sys.argv[2], "w"), separators=(",", ":"))
print(f"{len(suite['testcases'])} testcases", file=sys.stderr)
PY
gzip -9 -n -c "$work/limbo.min.json" >"$out"
ls -l "$out"
