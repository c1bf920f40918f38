"""HAProxy's CLI answers, as Debian's 2.6.12 gives them, parsed; and the per-route counters that
survive each reload's new worker starting again at zero."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from formation.node.edge.haproxy_metrics import TcpRouteCollector, TcpRouteCounters
from formation.node.edge.haproxy_stats import normal_address, parse_proc, parse_stat

HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
          "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
          "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
          "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
          "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
          "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
          "agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"
          "agent_fall,agent_health,addr,cookie,mode,algo,")
COLUMNS = HEADER[2:].rstrip(",").split(",")


def row(**values: str) -> str:
    return ",".join(values.get(c, "") for c in COLUMNS) + ","


def stat(frontend_stot: int, b0: str = "UP", b1: str = "DOWN") -> str:
    return "\n".join([
        HEADER,
        row(pxname="fe_db", svname="FRONTEND", scur="2", stot=str(frontend_stot),
            bin=str(10 * frontend_stot), bout=str(20 * frontend_stot), status="OPEN"),
        row(pxname="be_db", svname="b0", status=b0, addr="10.42.0.5:5432"),
        row(pxname="be_db", svname="b1", status=b1, addr="fd00::7:5432"),
        row(pxname="be_db", svname="BACKEND", status="UP"),
        row(pxname="fe_gone", svname="FRONTEND", stot="9", status="OPEN"),
    ]) + "\n\n"


def test_show_stat_rows() -> None:
    rows = parse_stat(stat(7))
    assert [(r.proxy, r.server) for r in rows][:3] == [
        ("fe_db", "FRONTEND"), ("be_db", "b0"), ("be_db", "b1")]
    front, b0, b1 = rows[:3]
    assert (front.sessions_now, front.sessions_total, front.bytes_in, front.bytes_out) == (
        2, 7, 70, 140)
    assert b0.up and not b1.up and b1.address == "fd00::7:5432"
    assert parse_stat("Unknown command\n\n") == []


def test_addresses_compare_whatever_the_brackets() -> None:
    assert normal_address("[fd00::7]:5432") == normal_address("fd00::7:5432") == "fd00::7:5432"
    assert normal_address("10.42.0.5:5432") == "10.42.0.5:5432"


def test_show_proc_gives_the_reload_counters() -> None:
    text = ("#<PID>          <type>          <reloads>       <uptime>        <version>\n"
            "15907           master          3 [failed: 1]   0d00h00m19s     2.6.12-1+deb12u4\n"
            "# workers\n"
            "16017           worker          0               0d00h00m16s     2.6.12-1+deb12u4\n"
            "# programs\n\n")
    info = parse_proc(text)
    assert info is not None and (info.reloads, info.failed, info.workers) == (3, 1, 1)
    assert parse_proc("garbage\n") is None


def test_counters_only_grow_across_reloads_and_forget_removed_routes() -> None:
    counters = TcpRouteCounters()
    counters.observe(parse_stat(stat(7)), {"db"})
    counters.observe(parse_stat(stat(3)), {"db"})  # fewer than before: a new worker
    assert counters.value(counters.connections, "db") == 10
    counters.new_worker()  # the engine reloaded: the next worker counts from 0
    counters.observe(parse_stat(stat(12)), {"db"})  # more than the last one had seen
    assert counters.value(counters.connections, "db") == 22
    assert "gone" not in counters.connections  # not a served route: not exported
    registry = CollectorRegistry()
    registry.register(TcpRouteCollector(counters))
    assert registry.get_sample_value("formation_edge_route_connections_total",
                                     {"route": "db"}) == 22
    assert registry.get_sample_value("formation_edge_route_active_connections",
                                     {"route": "db"}) == 2
    assert registry.get_sample_value("formation_edge_route_tcp_sent_bytes_total",
                                     {"route": "db"}) == 20 * 22
    counters.observe(parse_stat(stat(4)), set())  # the route was removed
    assert registry.get_sample_value("formation_edge_route_connections_total",
                                     {"route": "db"}) is None
