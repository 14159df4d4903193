# Sourced by every CLI test that reads the reference data: sets SHARED to $MODES_SHARED (default
# ../shared), or says where it looked and fails the test (exit 1) before anything else runs.
SHARED=${MODES_SHARED:-../shared}
if [ ! -d "$SHARED/ref" ]; then
    echo "shared/ not found (looked in $(realpath -m -- "$SHARED"))" >&2
    exit 1
fi
