#!/usr/bin/env python3
"""The agent's memory with many concurrent workers (issue 9's goal: < 150 MB RSS at 1,000).

Starts kube-sim (its pods are local bubblewrap processes), installs the CRDs, starts the agent,
applies a workflow whose `parallel` block runs N workers at once (each sleeps long enough for all
to be up together), applies a TestWorkflowExecution, and samples the agent's RSS every 0.5 s until
the execution's status is `passed`. Prints the peak RSS (VmHWM), the peak number of running pods
seen and the run's wall time.

Usage: bins/testkube-agent/bench/rss.py BIN_DIR [WORKERS=1000] [SLEEP_SECONDS=90]
  BIN_DIR holds testkube, testkube-agent, kube-sim and testkube-init (a release build measures
  the agent as shipped: `cargo build --release -p testkube -p testkube-agent -p kube-sim -p
  testkube-init`).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

bin_dir = os.path.abspath(sys.argv[1])
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
sleep_seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 90
work = tempfile.mkdtemp(prefix="agent-rss-")
kubeconfig = os.path.join(work, "config")
procs = []


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin,
                          capture_output=True, text=True, check=True).stdout


def rss_kb(pid, field):
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


try:
    image = os.path.join(work, "image")
    os.makedirs(image)
    shutil.copy(os.path.join(bin_dir, "testkube-init"), image)
    log = open(os.path.join(work, "kube-sim.log"), "w", encoding="utf-8")
    procs.append(subprocess.Popen(
        [os.path.join(bin_dir, "kube-sim"), "--kubeconfig", kubeconfig, "--state-dir",
         os.path.join(work, "state"), "--image", f"ghcr.io/testkube-rs/testkube-init={image}"],
        stdout=log, stderr=subprocess.STDOUT))
    while "ready" not in open(log.name, encoding="utf-8").read():
        time.sleep(0.1)
    crds = subprocess.run([os.path.join(bin_dir, "testkube"), "crds"], capture_output=True,
                          text=True, check=True).stdout
    kubectl("apply", "--server-side", "-f", "-", stdin=crds)
    agent_log = open(os.path.join(work, "agent.log"), "w", encoding="utf-8")
    agent = subprocess.Popen(
        [os.path.join(bin_dir, "testkube-agent"), "--kubeconfig", kubeconfig, "--home",
         os.path.join(work, "home"), "--admin-addr", "127.0.0.1:0"],
        stdout=agent_log, stderr=subprocess.STDOUT, env=dict(os.environ, TESTKUBE_LOG="warn"))
    procs.append(agent)
    kubectl("apply", "-f", "-", stdin=f"""apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: wide}}
spec:
  steps:
  - name: fan
    parallel:
      count: {workers}
      parallelism: {workers}
      shell: echo "worker {{{{ index }}}} up"; sleep {sleep_seconds}
""")
    time.sleep(2)
    print(f"idle agent (before the execution): RSS {rss_kb(agent.pid, 'VmRSS') / 1024:.1f} MB",
          flush=True)
    start = time.monotonic()
    kubectl("apply", "-f", "-", stdin="""apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowExecution
metadata: {name: wide-now}
spec: {testWorkflow: {name: wide}}
""")
    peak_pods = 0
    status = None
    last_pods_check = 0.0
    while time.monotonic() - start < sleep_seconds + 900:
        if agent.poll() is not None:
            sys.exit(f"the agent exited: see {agent_log.name}")
        if time.monotonic() - last_pods_check > 5:
            last_pods_check = time.monotonic()
            pods = json.loads(kubectl("get", "pods", "-o", "json"))["items"]
            running = sum(1 for pod in pods if pod.get("status", {}).get("phase") == "Running")
            peak_pods = max(peak_pods, running)
            twe = json.loads(kubectl("get", "twe", "wide-now", "-o", "json"))
            status = (twe.get("status", {}).get("latestExecution", {}).get("result", {})
                      .get("status"))
            print(f"{time.monotonic() - start:6.1f}s running pods {running:5d}  agent RSS "
                  f"{rss_kb(agent.pid, 'VmRSS') / 1024:6.1f} MB  status {status}", flush=True)
            if status in ("passed", "failed", "aborted"):
                break
        time.sleep(0.5)
    print(f"workers {workers}: status {status}, peak running pods {peak_pods}, agent peak RSS "
          f"(VmHWM) {rss_kb(agent.pid, 'VmHWM') / 1024:.1f} MB, run {time.monotonic() - start:.0f} s")
finally:
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(work, ignore_errors=True)
