#!/usr/bin/env bash
# `make demo`: the main job on the embedded default: the bundled Wav2Letter (trained on
# gradnap's synthetic corpus) and the bundled evaluation corpus (flac + phone TextGrids).
# No speech synthesizer and no download is needed.
set -euo pipefail
out="${1:-build/demo}"
gradnap=".venv/bin/gradnap"
assets="src/gradnap/assets"
mkdir -p "$out"

echo "== 1/4 the bundled model"
"$gradnap" model-info --model "$assets/default-model.pt"

echo "== 2/4 its error rates on the bundled corpus (sentences it never heard)"
"$gradnap" eval --model "$assets/default-model.pt" --corpus "$assets/eval/test" --by-speaker
"$gradnap" eval --model "$assets/default-model.pt" --corpus "$assets/eval/test-unseen-voice"

echo "== 3/4 GradNAP, NAvAI and NAP profiles: graphemes, phonemes, speakers, every layer"
"$gradnap" profile --corpus "$assets/eval" --out "$out/profiles.nc" \
    --group-by grapheme,phoneme,speaker,target,correct

echo "== 4/4 what the profiles rest on"
"$gradnap" summary "$out/profiles.nc"
echo "demo finished: profiles in $out/profiles.nc (xarray.open_datatree or gradnap.load_profiles)"
