-- Reverses 0001: executions depend on playbooks, so they go first.
DROP TABLE executions;
DROP TABLE playbooks;
