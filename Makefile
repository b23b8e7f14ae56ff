# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
export PYTHON

.PHONY: install demo demo-digits digit-scenes test test-fast bench bench-digit-scenes

install:
	bash tools/install.sh

demo: install
	$(PYTHON) tools/demo.py

# The backbone half on real data: generates the digit scenes (seconds), trains ResNet-50
# and HetConv-ResNet-50 digit classifiers for 100 iterations, prints their test top-1
# beside the trivial score and the full benchmark's (see docs/digit_scenes.md).
demo-digits: install
	$(PYTHON) tools/digit_scenes_demo.py

digit-scenes: install
	$(PYTHON) tools/make_digit_scenes.py

# Two workers on two cores, one torch thread each: no oversubscribed OpenMP threads.
test: install
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest tests -q -n 2 --dist loadfile

test-fast:
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest tests -q -n 2 --dist loadfile -m "not slow"

# latency_bound.py first (bench_backbones.py reads its FLOP-proportional goals) and again
# last (its measured column reads backbones.json).
bench: install
	$(PYTHON) benchmarks/bench_pac.py
	$(PYTHON) benchmarks/latency_bound.py
	$(PYTHON) benchmarks/bench_backbones.py
	$(PYTHON) benchmarks/latency_bound.py
	$(PYTHON) benchmarks/bench_train_cost.py
	$(PYTHON) benchmarks/bench_memory.py
	$(PYTHON) benchmarks/bench_memory.py --models maskrcnn --iters 800 --out benchmarks/results/memory_maskrcnn_800.json

# One backbone's whole chain (classifier, Mask R-CNN, Semantic FPN, pointing game), one
# torch thread: run two side by side, one per core, e.g.
#   make bench-digit-scenes BACKBONE=res2net-50 & make bench-digit-scenes BACKBONE=oct-resnet-50
# Every finished step is merged into benchmarks/results/digit_scenes.json at once.
BACKBONE ?= r50
SEED ?= 0
bench-digit-scenes: install
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/bench_digit_scenes.py --chain $(BACKBONE) --seed $(SEED)
