#!/usr/bin/env bash
# `make demo`: the main job on the embedded default: the bundled Wav2Letter (trained on
# gradnap's synthetic corpus) and the bundled evaluation corpus (flac + phone TextGrids).
# No speech synthesizer and no download is needed.
set -euo pipefail
out="${1:-build/demo}"
gradnap=".venv/bin/gradnap"
assets="src/gradnap/assets"
mkdir -p "$out"

echo "== 1/6 the bundled model"
"$gradnap" model-info --model "$assets/default-model.pt"

echo "== 2/6 its error rates on the bundled corpus (sentences it never heard)"
"$gradnap" eval --model "$assets/default-model.pt" --corpus "$assets/eval/test" --by-speaker
"$gradnap" eval --model "$assets/default-model.pt" --corpus "$assets/eval/test-unseen-voice"

echo "== 3/6 GradNAP, NAvAI and NAP profiles: graphemes, phonemes, speakers, every layer"
"$gradnap" profile --corpus "$assets/eval" --out "$out/profiles.nc" --resume \
    --group-by grapheme,phoneme,speaker,target,correct

echo "== 4/6 what the profiles rest on"
"$gradnap" summary "$out/profiles.nc"
echo "== 5/6 sanity check: profiles of the model randomized from the top layer down"
"$gradnap" sanity --corpus "$assets/eval" --limit 12 --out "$out/sanity.nc"

echo "== 6/6 the analyses and the HTML report"
"$gradnap" report "$out/profiles.nc" --sanity "$out/sanity.nc" --out "$out/report"
echo "demo finished: profiles in $out/profiles.nc (xarray.open_datatree or gradnap.load_profiles)"
echo "report: $(cd "$out/report" && pwd)/index.html"
