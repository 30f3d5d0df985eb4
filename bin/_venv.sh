# Sourced by bin/run and bin/test: find a Python >= 3.12, make .venv, install
# the project's dependencies (again only when pyproject.toml changes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"

python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null
}

find_python() {
    local wanted candidate
    wanted="$(tr -d '[:space:]' < "$ROOT/.python-version" 2>/dev/null || true)"
    for candidate in \
        "${KEYGRANT_PYTHON:-}" \
        "$(command -v pyenv >/dev/null && cd "$ROOT" && pyenv which python 2>/dev/null || true)" \
        "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$wanted"*/bin/python 2>/dev/null | sort -V | tail -1)" \
        python3.13 python3.12 \
        "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V | tail -1)" \
        python3; do
        [ -n "$candidate" ] || continue
        candidate="$(command -v "$candidate" 2>/dev/null || true)"
        if [ -n "$candidate" ] && python_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$VENV/bin/python" ] || ! python_ok "$VENV/bin/python"; then
    if ! PYTHON="$(find_python)"; then
        echo "error: Keygrant needs Python 3.12 or newer (Django 6)." >&2
        echo "       Install one (e.g. 'pyenv install 3.12') or point KEYGRANT_PYTHON at it." >&2
        exit 1
    fi
    echo "Creating .venv with $PYTHON ($("$PYTHON" --version))"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${EXTRAS//,/_}"
if [ ! -f "$STAMP" ]; then
    echo "Installing dependencies${EXTRAS:+ [$EXTRAS]} into .venv ..."
    {
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip &&
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$ROOT${EXTRAS:+[$EXTRAS]}"
    } 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
