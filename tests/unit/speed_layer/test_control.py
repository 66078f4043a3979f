from __future__ import annotations

from speed_layer.control import _clean


def test_pyflink_process_variables_do_not_reach_the_job() -> None:
    env = {"PATH": "/bin", "PYFLINK_GATEWAY_DISABLED": "true", "PYFLINK_GATEWAY_PORT": "1",
           "_PYFLINK_CONN_INFO_PATH": "/x", "PYTHON_LOOPBACK_SERVER_ADDRESS": "a:1",
           "CONCORD_HOME": "/h"}
    assert _clean(env) == {"PATH": "/bin", "CONCORD_HOME": "/h"}
