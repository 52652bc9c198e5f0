#!/usr/bin/env bash
# Seeds the `config` corpus with every TOML config written down in the repository: ```toml
# blocks in the Markdown docs, and the string literals in the Rust tests and sources (the
# quickstart's config in crates/cli, the config unit tests, the end-to-end tests) that look
# like a config. format! placeholders become a plausible address, so the seeds mostly parse.
# Seeds the `path` corpus with the request paths in the normaliser's unit tests and the
# hostile-request tests.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/config corpus/path
python3 - <<'PY'
import glob, hashlib, re

root = "../../.."
configs = []
for md in glob.glob(f"{root}/*.md") + glob.glob(f"{root}/docs/*.md") + glob.glob(f"{root}/crates/*/README.md"):
    configs += re.findall(r"```toml\n(.*?)```", open(md).read(), re.S)

sources = glob.glob(f"{root}/tests/*.rs") + glob.glob(f"{root}/crates/cli/src/**/*.rs", recursive=True)
sources += glob.glob(f"{root}/crates/gateway/src/**/*.rs", recursive=True)
def unescape(literal):
    """A Rust string literal's escapes (\\n, \\", \\u{..}, ...) to the characters."""
    simple = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
    return re.sub(r"\\(u\{([0-9a-fA-F]+)\}|x([0-9a-fA-F]{2})|.)",
                  lambda m: chr(int(m[2] or m[3], 16)) if m[2] or m[3] else simple.get(m[1], m[1]),
                  literal)

placeholder = re.compile(r"\{[A-Za-z_0-9]*(:[?#]*)?\}")
for rs in sources:
    text = open(rs).read()
    literals = re.findall(r'r#"(.*?)"#', text, re.S)
    for plain in re.findall(r'"((?:[^"\\\n]|\\.)*)"', text):
        literals.append(unescape(plain))
    for s in literals:
        if not re.search(r"^\s*\[\[?(server|upstream)|^\s*listen\s*=|^[a-z_]+ = .*\n", s, re.M):
            continue
        if placeholder.search(s):
            s = placeholder.sub("127.0.0.1:8443", s).replace("{{", "{").replace("}}", "}")
        configs.append(s)

def save(target, data):
    open(f"corpus/{target}/{hashlib.sha1(data).hexdigest()}", "wb").write(data)

for text in configs:
    save("config", text.encode())

for rs in [f"{root}/crates/gateway/src/path.rs", f"{root}/tests/hostile.rs"]:
    for literal in re.findall(r'"(/(?:[^"\\\n]|\\.)*)"', open(rs).read()):
        save("path", unescape(literal).encode())
PY
echo "corpus/config: $(ls corpus/config | wc -l) configs, corpus/path: $(ls corpus/path | wc -l) paths"
