# The README's two commands are `sudo make demo` and `sudo make test`; both set up
# whatever is missing first (scripts/setup.sh is idempotent and fast when all is done).
VENV := .venv/bin

.PHONY: setup demo test test-unit clean doctor

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/mec demo

test: setup
	bash scripts/run-tests.sh

test-unit:
	$(VENV)/python -m pytest tests/unit

doctor:
	$(VENV)/mec doctor

clean:
	$(VENV)/mec clean
