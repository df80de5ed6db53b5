#!/bin/sh
# check_exports.sh SHARED STATIC — libnncrt exports only the nnc_* API:
# every dynamic symbol defined by the shared library starts with nnc_, the
# public entry points are there, and every global symbol of the static
# archive starts with nnc_ (public) or nncrt_ (internal, hidden).
set -eu
so=$1 a=$2
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBRVW]/ {print $3}' | grep -v '^nnc_' || true)
if [ -n "$bad" ]; then
  echo "libnncrt.so exports symbols outside the nnc_ prefix:"; echo "$bad"; exit 1
fi
for sym in nnc_last_error nnc_rt_set_error nnc_st_load nnc_st_save \
           nnc_st_load_exact nnc_st_save_tensors nnc_init_tensor \
           nnc_model_init nnc_philox4x32_10 nnc_parallel_for \
           nnc_set_num_threads nnc_get_num_threads nnc_sgemm \
           nnc_sgemm_batched nnc_dropout_mask nnc_attention_fwd \
           nnc_attention_bwd nnc_lstm_cell_fwd nnc_lstm_cell_bwd \
           nnc_softmax_xent; do
  nm -D --defined-only "$so" | awk '{print $3}' | grep -qx "$sym" ||
    { echo "libnncrt.so does not export $sym"; exit 1; }
done
if nm -D --defined-only "$so" | awk '{print $3}' | grep -q '^nncrt_'; then
  echo "internal nncrt_ symbols leak from libnncrt.so"; exit 1
fi
bad=$(nm -g --defined-only "$a" | awk 'NF == 3 {print $3}' | grep -v -e '^nnc_' -e '^nncrt_' || true)
if [ -n "$bad" ]; then
  echo "libnncrt.a defines globals outside nnc_/nncrt_:"; echo "$bad"; exit 1
fi
echo "exports ok: $(nm -D --defined-only "$so" | grep -c ' T nnc_') functions"
