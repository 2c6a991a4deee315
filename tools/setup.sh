#!/usr/bin/env bash
# Install everything the book needs into the active Python environment, then build
# the HTML site into _build/html. Safe to run again: installed pieces are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python || command -v python3)}

# 1. System packages on Debian/Ubuntu, when we may install them: Fashion-MNIST for
#    offline use, Chromium and its driver for the browser tests, npm (with Node.js) for
#    axe-core, the accessibility checker. Best effort: each package is optional (online,
#    Fashion-MNIST downloads itself; without Chromium or axe-core the browser tests
#    are skipped and say so).
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  if [ -z "$SUDO" ] || sudo -n true 2>/dev/null; then
    need=()
    [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
    command -v npm >/dev/null 2>&1 || need+=(npm)
    if [ ${#need[@]} -gt 0 ]; then
      $SUDO apt-get update -qq || true
      for pkg in "${need[@]}"; do
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
          || echo "setup: could not install $pkg with apt-get (optional, continuing)"
      done
    fi
  else
    echo "setup: not root; for offline data and browser tests install: dataset-fashion-mnist chromium chromium-driver npm"
  fi
fi

# 2. PyTorch. Keep a torch that is already there (Colab, a GPU box). Otherwise take the
#    CUDA build only where there is an NVIDIA GPU, and the much smaller CPU wheel elsewhere.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$PY" -m pip install "torch>=2.1"
  else
    "$PY" -m pip install --retries 0 --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
      || "$PY" -m pip install "torch==2.13.0"
  fi
fi

# 3. The library, the book toolchain and the test tools.
"$PY" -m pip install -r requirements.txt

# 4. axe-core for the accessibility tests, the version pinned in package-lock.json, into
#    ./node_modules (the build skips it). Best effort, like the system packages.
if command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error \
    || echo "setup: npm ci failed (axe-core); the accessibility tests will be skipped"
else
  echo "setup: no npm; install Node.js with npm for the accessibility tests (axe-core)"
fi

# 5. The site (every page executed; outputs cached in _build/.jupyter_cache).
"$PY" tools/build.py
echo "setup: the site is in _build/html/index.html"
