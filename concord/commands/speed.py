"""`concord speed start | stop | status`: the speed job."""

from __future__ import annotations

import argparse
import json

from shared.config import Settings


def cmd_speed(settings: Settings, args: argparse.Namespace) -> int:
    from speed_layer import control

    if args.speed_command == "start":
        print(control.start(settings, drop_unmatched_state=args.drop_unmatched_state))
    elif args.speed_command == "stop":
        print(control.stop(settings))
    else:
        info = control.status(settings)
        running = bool(info["running"])
        if args.json:
            print(json.dumps(info))
        else:
            if not running:
                info["running"] = "no (`concord speed start` starts it)"
            for key, value in info.items():
                if value is not None:
                    print(f"  {key}: {value}")
        return 0 if running else 1
    return 0
