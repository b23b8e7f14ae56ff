# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
export PYTHON

.PHONY: install demo test test-fast bench

install:
	bash tools/install.sh

demo: install
	$(PYTHON) tools/demo.py

test: install
	$(PYTHON) -m pytest tests -q -n 2 --dist loadfile

test-fast:
	$(PYTHON) -m pytest tests -q -n 2 --dist loadfile -m "not slow"

bench: install
	$(PYTHON) benchmarks/bench_pac.py
	$(PYTHON) benchmarks/bench_backbones.py
	$(PYTHON) benchmarks/latency_bound.py
