#!/bin/sh
# CMake compiler launcher for the one slow step of a first run: compiling llama.cpp
# (llama-cpp-python is sdist-only on PyPI). hatch installs quietly, so those minutes would
# show only hatch's spinner. hatch.toml's CMAKE_ARGS puts this script in front of every
# compile: it counts the compile in the build directory and, on a terminal, says how far the
# build is and about how long is left; then it runs the compiler unchanged. Without a
# terminal (CI, a log) it prints nothing.

# Compiles in a llama-cpp-python 0.3.36 build with -DGGML_NATIVE=OFF (the version the lock
# pins; `ninja -t commands` in its build directory). Another version only makes the estimate
# rougher.
total=${PARLEY_COMPILE_STEPS:-178}
step=$((total / 10))
message=""

# mkdir is atomic: of the first compiles (ninja starts several at once) exactly one says it.
if mkdir .parley-compile-start 2>/dev/null; then
    date +%s > .parley-compile-start/at
    message="First run: compiling llama.cpp from source (llama-cpp-python has no wheel on PyPI), once. About 5-6 min on 2 cores."
fi
echo >> .parley-compiles
done=$(wc -l < .parley-compiles)
if [ "$done" -ge "$step" ] && [ $((done % step)) -eq 0 ] && [ "$done" -lt "$total" ]; then
    elapsed=$(($(date +%s) - $(cat .parley-compile-start/at)))
    left=$((elapsed * (total - done) / done))
    message=$(printf 'Compiling llama.cpp: %d of about %d files, about %d min %02d s left.' \
        "$done" "$total" $((left / 60)) $((left % 60)))
fi
if [ -n "$message" ]; then
    { printf '\n  %s\n' "$message" > /dev/tty; } 2>/dev/null
fi

exec "$@"
