"""A job's AZ_BATCHAI_* values as the node runner logged them."""

from __future__ import annotations

from openbai.web.environment import execution_log_name, parse_environment

LOG = """\
2018/05/01 12:00:00 job ws/exp/j on node 0 (localhost)
2018/05/01 12:00:01 AZ_BATCHAI_JOB_TEMP=/nodes/0/jobs/ws/exp/j
2018/05/01 12:00:01 AZ_BATCHAI_OUTPUT_MODEL=/mnt/logs/out=with=equals
2018/05/01 12:00:01 AZ_BATCHAI_NUM_GPUS=0
2018/05/01 12:00:02 OTHER=1
AZ_BATCHAI_FAKE=printed by the job, not logged by the runner
2018/05/01 12:00:03 starting the job
"""


def test_logged_variables_are_read() -> None:
    assert parse_environment(LOG) == {
        "AZ_BATCHAI_JOB_TEMP": "/nodes/0/jobs/ws/exp/j",
        "AZ_BATCHAI_NUM_GPUS": "0",
        "AZ_BATCHAI_OUTPUT_MODEL": "/mnt/logs/out=with=equals",
    }


def test_the_single_node_log_or_else_the_first_nodes() -> None:
    assert execution_log_name(["stdout.txt", "execution.log"]) == "execution.log"
    assert execution_log_name(["execution-n1.log", "execution-n0.log"]) == "execution-n0.log"
    assert execution_log_name(["stdout.txt"]) is None
