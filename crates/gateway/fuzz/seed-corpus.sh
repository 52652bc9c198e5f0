#!/usr/bin/env bash
# Seeds the `config` corpus with every TOML config written down in the repository: ```toml
# blocks in the Markdown docs, and the string literals in the Rust tests and sources (the
# quickstart's config in crates/cli, the config unit tests, the end-to-end tests) that look
# like a config. format! placeholders become a plausible address, so the seeds mostly parse.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/config
python3 - <<'PY'
import glob, hashlib, re

root = "../../.."
configs = []
for md in glob.glob(f"{root}/*.md") + glob.glob(f"{root}/docs/*.md") + glob.glob(f"{root}/crates/*/README.md"):
    configs += re.findall(r"```toml\n(.*?)```", open(md).read(), re.S)

sources = glob.glob(f"{root}/tests/*.rs") + glob.glob(f"{root}/crates/cli/src/**/*.rs", recursive=True)
sources += glob.glob(f"{root}/crates/gateway/src/**/*.rs", recursive=True)
placeholder = re.compile(r"\{[A-Za-z_0-9]*(:[?#]*)?\}")
for rs in sources:
    text = open(rs).read()
    literals = re.findall(r'r#"(.*?)"#', text, re.S)
    for plain in re.findall(r'"((?:[^"\\\n]|\\.)*)"', text):
        literals.append(plain.encode().decode("unicode_escape", "ignore"))
    for s in literals:
        if not re.search(r"^\s*\[\[?(server|upstream)|^\s*listen\s*=|^[a-z_]+ = .*\n", s, re.M):
            continue
        if placeholder.search(s):
            s = placeholder.sub("127.0.0.1:8443", s).replace("{{", "{").replace("}}", "}")
        configs.append(s)

for text in configs:
    data = text.encode()
    open(f"corpus/config/{hashlib.sha1(data).hexdigest()}", "wb").write(data)
PY
echo "corpus/config: $(ls corpus/config | wc -l) configs"
