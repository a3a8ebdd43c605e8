"""Role blocklist_schedule, applied to a temporary root: the systemd units (checked by systemd-analyze when it is
there), the cron entry, idempotence, removal, and the wrapper's lock, logging, check mode and exit status.

systemd is not PID 1 here, so nothing is enabled; the wrapper runs for real with a stand-in ansible-playbook.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
NAME = "wsf-rep-push"
FAKE = """#!/bin/bash
printf '%s\\n' "$@" > "$(dirname "$0")/args.txt"
echo "PLAY [fake blocklist push] ****"
echo "line with <markup> & spaces"
exit "${FAKE_RC:-0}"
"""


def apply(root, **overrides):
    variables = {
        "blocklist_schedule_root": str(root),
        "blocklist_schedule_name": NAME,
        "blocklist_schedule_user": "root",
        "blocklist_schedule_ansible_playbook": str(root / "bin" / "ansible-playbook"),
        "blocklist_schedule_inventory": "/srv/inventory.yml",
        "blocklist_schedule_working_dir": "/",
        "blocklist_schedule_extra_args": ["-e", "blocklist_max_entries=5000"],
        "blocklist_schedule_environment": {"FAKE_RC": "0"},
        "blocklist_schedule_lock_file": str(root / "run" / "push.lock"),
        "blocklist_schedule_log_file": str(root / "log" / "push.log"),
        "blocklist_schedule_script": "/usr/local/libexec/webshield/blocklist-push",
        "ansible_python_interpreter": sys.executable,
    }
    variables.update(overrides)
    play = root.parent / ("play-%s.yml" % root.name)
    play.write_text(
        "---\n- name: Schedule\n  hosts: localhost\n  gather_facts: false\n  roles:\n"
        "    - role: fleetguard.webshield.blocklist_schedule\n"
    )
    extra = root.parent / ("vars-%s.json" % root.name)
    extra.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [PLAYBOOK_BIN, "-i", "localhost,", "-c", "local", str(play), "-e", "@" + str(extra)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return int(re.search(r"changed=(\d+)", proc.stdout).group(1))


@pytest.fixture(scope="module")
def systemd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wsf-rep-sched") / "root"
    (root / "bin").mkdir(parents=True)
    fake = root / "bin" / "ansible-playbook"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    first = apply(root, blocklist_schedule_backend="systemd")
    second = apply(root, blocklist_schedule_backend="systemd")
    yield {"root": root, "first": first, "second": second}
    shutil.rmtree(root.parent, ignore_errors=True)


def read(root, path):
    return (root / path.lstrip("/")).read_text()


def wrapper(root, *args, **env):
    return subprocess.run(
        [str(root / "usr/local/libexec/webshield/blocklist-push"), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        check=False,
    )


def test_second_run_changes_nothing(systemd_root):
    assert systemd_root["first"] > 0
    assert systemd_root["second"] == 0


@pytest.mark.parametrize(
    "path, line",
    [
        ("/etc/systemd/system/%s.service" % NAME, "Type=oneshot"),
        ("/etc/systemd/system/%s.service" % NAME, "ExecStart=/usr/local/libexec/webshield/blocklist-push"),
        ("/etc/systemd/system/%s.service" % NAME, "SyslogIdentifier=%s" % NAME),
        ("/etc/systemd/system/%s.service" % NAME, "TimeoutStartSec=3720"),
        ("/etc/systemd/system/%s.timer" % NAME, "OnCalendar=*-*-* *:07:00"),
        ("/etc/systemd/system/%s.timer" % NAME, "Persistent=true"),
        ("/etc/systemd/system/%s.timer" % NAME, "Unit=%s.service" % NAME),
        ("/etc/systemd/system/%s.timer" % NAME, "WantedBy=timers.target"),
    ],
)
def test_systemd_units(systemd_root, path, line):
    assert line in read(systemd_root["root"], path).splitlines()


def test_no_cron_entry_with_systemd(systemd_root):
    assert not (systemd_root["root"] / "etc/cron.d" / NAME).exists()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_analyze_verify(systemd_root, tmp_path):
    # Verify against the host's systemd; ExecStart points at the wrapper installed under the temporary root.
    root = systemd_root["root"]
    units = []
    for ext in (".service", ".timer"):
        text = read(root, "/etc/systemd/system/" + NAME + ext)
        text = text.replace("ExecStart=/usr/local/", "ExecStart=%s/usr/local/" % root)
        text = text.replace("WorkingDirectory=/\n", "WorkingDirectory=%s\n" % root)
        (tmp_path / (NAME + ext)).write_text(text)
        units.append(str(tmp_path / (NAME + ext)))
    proc = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if NAME in line] == []


def test_wrapper_runs_logs_and_passes_arguments(systemd_root):
    root = systemd_root["root"]
    proc = wrapper(root)
    assert proc.returncode == 0, proc.stderr
    args = (root / "bin" / "args.txt").read_text().splitlines()
    assert args == [
        "-i",
        "/srv/inventory.yml",
        "fleetguard.webshield.blocklist_push",
        "-e",
        "blocklist_max_entries=5000",
    ]
    assert "line with <markup> & spaces" in proc.stdout
    log = (root / "log" / "push.log").read_text().splitlines()
    stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} %s\[\d+\] " % NAME)
    assert log and all(stamped.match(line) for line in log)
    assert any(line.endswith("end, exit status 0") for line in log)


@pytest.mark.parametrize(
    "args, env, want_rc, want_tail",
    [
        (["--check"], {}, 0, ["--check", "--diff"]),
        (["--check", "--tags", "x"], {}, 0, ["--check", "--diff", "--tags", "x"]),
        ([], {"FAKE_RC": "3"}, 3, ["blocklist_max_entries=5000"]),
    ],
)
def test_wrapper_check_mode_and_exit_status(systemd_root, args, env, want_rc, want_tail):
    root = systemd_root["root"]
    # The wrapper exports blocklist_schedule_environment (FAKE_RC=0); override it through a second script run.
    if env:
        script = root / "usr/local/libexec/webshield/blocklist-push"
        text = script.read_text().replace("export FAKE_RC=0", "export FAKE_RC=%s" % env["FAKE_RC"])
        copy = root / "bin" / "blocklist-push-rc"
        copy.write_text(text)
        copy.chmod(0o755)
        proc = subprocess.run([str(copy), *args], capture_output=True, text=True, check=False)
    else:
        proc = wrapper(root, *args)
    assert proc.returncode == want_rc
    got = (root / "bin" / "args.txt").read_text().splitlines()
    assert got[-len(want_tail) :] == want_tail
    assert ("end, exit status %d" % want_rc) in proc.stdout


def test_wrapper_skips_while_another_run_holds_the_lock(systemd_root):
    root = systemd_root["root"]
    (root / "bin" / "args.txt").unlink(missing_ok=True)
    (root / "run").mkdir(exist_ok=True)
    with open(root / "run" / "push.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = wrapper(root)
        fcntl.flock(handle, fcntl.LOCK_UN)
    assert proc.returncode == 0
    assert "another run holds" in proc.stdout
    assert not (root / "bin" / "args.txt").exists()
    assert "this run is skipped" in (root / "log" / "push.log").read_text()


def test_check_mode_setting_and_cron_backend_then_absent(tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    fake = root / "bin" / "ansible-playbook"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    apply(root, blocklist_schedule_backend="systemd")
    assert apply(root, blocklist_schedule_backend="cron", blocklist_schedule_check_mode=True) > 0
    cron = read(root, "/etc/cron.d/" + NAME)
    entry = [line for line in cron.splitlines() if line and not line.startswith("#") and "=" not in line.split()[0]]
    assert entry == ["7 * * * * root /usr/local/libexec/webshield/blocklist-push 2>&1 | logger -t %s" % NAME]
    assert not (root / "etc/systemd/system" / (NAME + ".timer")).exists()
    proc = wrapper(root)
    assert proc.returncode == 0
    assert (root / "bin" / "args.txt").read_text().splitlines()[-2:] == ["--check", "--diff"]
    assert apply(root, blocklist_schedule_backend="cron", blocklist_schedule_state="absent") > 0
    for path in ("/etc/cron.d/" + NAME, "/usr/local/libexec/webshield/blocklist-push"):
        assert not (root / path.lstrip("/")).exists()
