# Limner: the two commands a newcomer needs are `make demo` and `make test`.
.PHONY: demo serve test check unit gen bench clean

demo:  ## install, then generate and edit an image through the API with live progress
	scripts/install
	.venv/bin/limner demo

serve:  ## install, then run the server on 127.0.0.1:50051
	scripts/install
	.venv/bin/limner serve

test:  ## install with dev tools, then lint, type-check, proto checks and the whole test suite
	scripts/install --dev
	scripts/check
	.venv/bin/pytest

check:  ## static checks only
	scripts/install --dev
	scripts/check

gen:  ## regenerate vendored protos and stubs after editing proto/
	scripts/install --dev
	.venv/bin/python scripts/vendor_googleapis.py
	scripts/gen

bench:  ## end-to-end GenerateImage benchmark against a bare grpc.aio ceiling
	scripts/install --dev
	.venv/bin/python bench/bench_generate.py

clean:
	rm -rf .venv .limner demo-output .pytest_cache .mypy_cache .ruff_cache
