#!/usr/bin/env bash
# `make demo`: the main job on the embedded default. Until the committed model and corpus
# land it synthesizes a small corpus (festival, flite, espeak-ng voices), trains a small
# Wav2Letter on it, and evaluates it. Rerunning resumes what is already there.
set -euo pipefail
out="${1:-build/demo}"
gradnap=".venv/bin/gradnap"
mkdir -p "$out"

echo "== 1/4 the paper's model"
"$gradnap" model-info --preset paper

echo "== 2/4 a small synthetic corpus (400 sentences, 12 voices, phone TextGrids)"
"$gradnap" synth --out "$out/corpus" --sentences 400 --jobs 2

echo "== 3/4 training a 'small' Wav2Letter on it (CTC, Adam)"
resume=()
[ -f "$out/model.pt" ] && resume=(--resume)
"$gradnap" train --corpus "$out/corpus" --preset small --out "$out/model.pt" \
    --epochs 30 --lr 2e-3 --batch-seconds 30 --checkpoint-every 100 "${resume[@]}"

echo "== 4/4 evaluation (greedy and beam search), per speaker"
"$gradnap" eval --model "$out/model.pt" --corpus "$out/corpus/test" --by-speaker
"$gradnap" eval --model "$out/model.pt" --corpus "$out/corpus/test-unseen-voice"
echo "demo finished: model $out/model.pt, corpus $out/corpus"
