"""SIGHUP reload planning: live keys apply, device and model keys wait for a restart."""

from __future__ import annotations

from daemon import config
from daemon.appliance.reload import RESTART_ONLY, flatten, plan_reload


def test_live_keys_apply_and_device_keys_are_kept_until_restart() -> None:
    old = config.parse({"audio": {"input": "mic-a", "volume": 50}})
    new = config.parse(
        {
            "audio": {"input": "mic-b", "volume": 70},
            "session": {"inactivity_timeout": 9.0},
            "wakeword": {"threshold": 0.7},
        }
    )
    plan = plan_reload(old, new)
    assert plan.applied == ("audio.volume", "session.inactivity_timeout")
    assert plan.needs_restart == ("audio.input", "wakeword.threshold")
    assert plan.config.audio.input == "mic-a"
    assert plan.config.audio.volume == 70
    assert plan.config.wakeword.threshold == old.wakeword.threshold
    assert plan.config.session.inactivity_timeout == 9.0


def test_an_unchanged_file_changes_nothing() -> None:
    cfg = config.parse({"realtime": {"voice": "cedar"}})
    plan = plan_reload(cfg, cfg)
    assert plan.applied == () and plan.needs_restart == () and plan.config == cfg


def test_every_restart_only_name_is_a_real_config_key() -> None:
    keys = flatten(config.Config())
    for name in RESTART_ONLY:
        assert name in keys or any(k.startswith(name + ".") for k in keys), name
