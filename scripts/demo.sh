#!/usr/bin/env bash
# `make demo`: the main job on the embedded default: the bundled Wav2Letter (trained on
# gradnap's synthetic corpus) and the bundled evaluation corpus (flac + phone TextGrids).
# No speech synthesizer and no download is needed.
set -euo pipefail
out="${1:-build/demo}"
gradnap=".venv/bin/gradnap"
assets="src/gradnap/assets"
mkdir -p "$out"
step() { echo "== $1 ($(date +%T), ${SECONDS} s so far)"; }

step "1/8 the bundled model"
"$gradnap" model-info --model "$assets/default-model.pt"

step "2/8 its error rates on the bundled corpus (sentences it never heard)"
"$gradnap" eval --model "$assets/default-model.pt" --corpus "$assets/eval/test" --by-speaker
"$gradnap" eval --model "$assets/default-model.pt" --corpus "$assets/eval/test-unseen-voice"

step "3/8 GradNAP, NAvAI and NAP profiles: graphemes, phonemes, speakers, every layer"
"$gradnap" profile --corpus "$assets/eval" --out "$out/profiles.nc" --resume \
    --group-by grapheme,phoneme,speaker,target,correct

step "4/8 what the profiles rest on"
"$gradnap" summary "$out/profiles.nc"
step "5/8 sanity check: profiles of the model randomized from the top layer down"
"$gradnap" sanity --corpus "$assets/eval" --limit 12 --out "$out/sanity.nc" --force

step "6/8 the analyses and the HTML report"
"$gradnap" report "$out/profiles.nc" --sanity "$out/sanity.nc" --out "$out/report" --force
step "7/8 Whisper tiny.en on real speech (Debian's pocketsphinx-testdata: LibriVox, cards, goforward)"
if [ ! -f "$out/real-speech/corpus.json" ]; then
    .venv/bin/python scripts/real_speech_corpus.py --out "$out/real-speech"
fi
"$gradnap" eval --model whisper-tiny.en --corpus "$out/real-speech"
"$gradnap" profile --model whisper-tiny.en --corpus "$out/real-speech" --out "$out/whisper.nc" \
    --resume --group-by token,phoneme
"$gradnap" report "$out/whisper.nc" --out "$out/whisper-report" --force
echo "Whisper report: $(cd "$out/whisper-report" && pwd)/index.html"
step "8/8 GradNAPs across training: the committed trajectory of the small preset (8 checkpoints)"
"$gradnap" dynamics --checkpoints "$assets/trajectory-small" --corpus "$assets/eval/test" \
    --limit 16 --events final --layers input,conv4,conv7,conv10 \
    --out "$out/dynamics.nc" --force --figures "$out/dynamics-figures"
"$gradnap" report "$out/dynamics.nc" --out "$out/dynamics-report" --force
echo "dynamics page: $(cd "$out/dynamics-report" && pwd)/dynamics.html"
echo "demo finished in ${SECONDS} s: profiles in $out/profiles.nc (xarray.open_datatree or gradnap.load_profiles)"
echo "report: $(cd "$out/report" && pwd)/index.html"
