#!/usr/bin/env bash
# SIFT Flow end to end, the way the README's numbers are made: every choice on the validation split
# (stratified over the 8 scene types, written by the training job to MODEL/validation.txt), test.txt only
# reports. Usage: RUNS=runs bash benchmarks/siftflow_recipe.sh [stage...]   (stages: parser features single
# bundle validate test; default all). About 75 min on 2 cores.
set -euo pipefail
D=${DATA:-../shared/data/siftflow}
R=${RUNS:-runs}
BEAM="--runner=FnApiRunner --direct_running_mode=multi_threading --direct_num_workers=2"
STAGES=${*:-parser features single bundle validate test}
PY=${PYTHON:-python}
has() { [[ " $STAGES " == *" $1 "* ]]; }

has parser && $PY -m pipelines.train_parser --data "$D" --output "$R/sf_parser" --epochs 25
has features && $PY -m pipelines.extract_features --input "$D/train.txt" --list_root "$D/images" \
    --output "$R/sf_feat_sem" --parser "$R/sf_parser" $BEAM
has single && $PY -m pipelines.train --features "$R/sf_feat_sem" --output "$R/sf_model_sem" --epochs 20
has bundle && $PY -m pipelines.train --features "$R/sf_feat_sem" --output "$R/sf_bundle" --adaptive_clustering \
    --max_layers 2 --root_model "$R/sf_model_sem"
if has validate; then  # selection k and candidate layers, refinement check: validation images only
    VAL="$R/sf_model_sem/validation.txt"
    $PY benchmarks/quality.py --model "$R/sf_model_sem" --input "$VAL" --output "$R/val_single.json"
    for k in 1 3 5; do
        for layers in 0 all; do
            $PY benchmarks/quality.py --model "$R/sf_bundle" --input "$VAL" --selection_k $k \
                --selection_layers $layers --output "$R/val_bundle_k${k}_${layers}.json"
        done
    done
fi
if has test; then  # report only
    $PY benchmarks/quality.py --model "$R/sf_model_sem" --input "$D/test.txt" --list_root "$D/images" \
        --output "$R/test_single.json"
    $PY benchmarks/quality.py --model "$R/sf_bundle" --input "$D/test.txt" --list_root "$D/images" \
        --output "$R/test_bundle.json"
fi
