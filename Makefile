# The two commands a newcomer needs:  make up   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test setup server bench clean

up: setup server ## set up everything and run shared-mysql up on the embedded default
	@test -f shared-mysql.yaml || $(BIN)/shared-mysql init
	$(BIN)/shared-mysql up
	@echo
	@echo "CLI: $(BIN)/shared-mysql   (try: $(BIN)/shared-mysql tenants, $(BIN)/shared-mysql credentials orders)"

test: setup server ## set up and run the whole test suite (unit, integration on a real server, infra)
	@scripts/ensure-promtool.sh $(BIN)
	@scripts/ensure-pt.sh
	$(BIN)/python -m pytest -q -ra -n 2 --dist loadfile

setup: $(STAMP)

$(STAMP): pyproject.toml
	@scripts/ensure-python.sh $(PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	$(BIN)/python -m pip install -q -e '.[test,infra]'
	@touch $@

server:
	@scripts/ensure-server.sh


bench: setup server ## apply/plan vs the raw-SQL floor (ARGS="--ansible" adds Ansible), client connects, rotation under load, backups, masking
	$(BIN)/python bench/tenants.py --tenants 100 $(ARGS)
	$(BIN)/python bench/client.py
	$(BIN)/python bench/rotation.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/exporter.py
	$(BIN)/python bench/slowlog.py
	@command -v mydumper >/dev/null || echo "(bench/backup.py: apt-get install mydumper adds the mydumper/myloader columns)"
	$(BIN)/python bench/backup.py
	$(BIN)/python bench/masking.py
	$(BIN)/python bench/migrate.py
	$(BIN)/python bench/doctor.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
