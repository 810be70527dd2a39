# Sourced by scripts/test.sh: starts the services the tests need (none yet).
:
