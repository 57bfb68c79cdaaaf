# start1 for the peer in the "at once" form of dbos-bench's start1: the 1000 starts are issued
# concurrently (32 threads: DBOS Python's start_workflow is synchronous), then all are awaited.
# Same workflow as /work/shared/peer/par.py. Usage: python peer_start1_atonce.py URL [N]
import sys, time, json
from concurrent.futures import ThreadPoolExecutor
from dbos import DBOS

url = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
DBOS(config={"name": "bench", "system_database_url": url, "run_admin_server": False})

@DBOS.step()
def noop(i: int) -> int:
    return i

@DBOS.workflow()
def one_step(x: int) -> int:
    return noop(x)

DBOS.launch()
one_step(0)
with ThreadPoolExecutor(max_workers=32) as pool:
    t0 = time.perf_counter()
    hs = list(pool.map(lambda i: DBOS.start_workflow(one_step, i), range(n)))
    for h in hs: h.get_result()
    el = time.perf_counter() - t0
print(json.dumps({"peer": "dbos-py", "scenario": "start1-atonce", "db": url.split(":")[0], "n": n, "wf_per_s": round(n/el, 1)}))
DBOS.destroy()
