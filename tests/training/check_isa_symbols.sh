#!/usr/bin/env bash
# Checks that the CPU trainer's wide-instruction-set objects (training/cpu_gemm_avx2.cpp,
# training/cpu_gemm_avx512.cpp) define nothing another object could also define: every global
# symbol in them must be in their own namespaces (phydream_eigen_<isa>, phydream::training::isa_<isa>).
# Otherwise the linker may keep their copy of an inline function, compiled for AVX2 or AVX-512,
# where baseline code calls it, and a CPU without those instructions would stop with SIGILL.
# Usage: check_isa_symbols.sh LIBRARY ISA...   (LIBRARY: the static libphydream.a)
set -euo pipefail
lib=$(realpath "$1")
shift
case "$lib" in
  *.a) ;;
  *) echo "check_isa_symbols: $lib is not a static library; nothing to check"; echo "[  SKIPPED ]"; exit 0 ;;
esac
status=0
for isa in "$@"; do
  member="cpu_gemm_${isa}.cpp.o"
  if ! ar t "$lib" | grep -qx "$member"; then
    echo "check_isa_symbols: $lib has no member $member"
    status=1
    continue
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && ar x "$lib" "$member")
  # global definitions: uppercase types (T, W, V, B, D, R, ...) and GNU unique (u)
  symbols=$(nm -C --defined-only "$tmp/$member" | awk '$2 ~ /^[A-Zu]$/ { $1 = ""; $2 = ""; sub(/^  /, ""); print }')
  rm -rf "$tmp"
  count=$(printf '%s\n' "$symbols" | grep -c . || true)
  foreign=$(printf '%s\n' "$symbols" | grep -v -e "phydream_eigen_${isa}::" -e "phydream::training::isa_${isa}::" \
            -e '^DW\.ref\.__gxx_personality_v0$' | grep . || true)
  if [[ -n "$foreign" ]]; then
    echo "check_isa_symbols: $member defines symbols outside its namespaces:"
    printf '%s\n' "$foreign" | head -20
    status=1
  elif [[ "$count" -eq 0 ]]; then
    echo "check_isa_symbols: $member defines no global symbols (are the products compiled?)"
    status=1
  else
    echo "check_isa_symbols: $member: $count global symbols, all its own"
  fi
done
[[ $status -eq 0 ]] && echo "check_isa_symbols: ok"
exit $status
