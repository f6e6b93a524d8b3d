"""``aqrt serve`` over real HTTP on 127.0.0.1: auth, isolation, limits, jobs, sessions, listing."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import jwt
import numpy as np
import pytest
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp

from aqrt import Batch, Estimator, LocalService, Options, Sampler, Session
from aqrt.wire import pubs_to_wire, to_jsonable

from .server_support import (
    CRN,
    GRANT,
    FakeClock,
    bell,
    make_config,
    measured_bell,
    rotation,
    running_server,
    slow_circuit,
)

pytestmark = pytest.mark.asyncio


def _error_message(body: dict) -> str:
    assert set(body) >= {"errors", "trace", "status_code"}, body
    return body["errors"][0]["message"]


async def _still_serving(client, token: str) -> None:
    status, body = await client.call("GET", "/backends", token)
    assert status == 200 and body["devices"][0]["name"] == "aqrt_statevector"


# -- auth -------------------------------------------------------------------------------------------


async def test_token_is_an_hs256_jwt_for_the_key_s_user(tmp_path) -> None:
    clock = FakeClock()
    async with running_server(make_config(tmp_path, clock=clock, token_ttl=600)) as client:
        async with client.http.post(
            f"{client.base}/identity/token", data={"grant_type": GRANT, "apikey": "bob-key"}
        ) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600
        assert answer["expiration"] == int(clock.now) + 600
        claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
        assert claims["sub"] == "bob" and claims["iat"] == int(clock.now) and claims["exp"] == int(clock.now) + 600
        assert jwt.get_unverified_header(answer["access_token"])["alg"] == "HS256"

        async with client.http.post(
            f"{client.base}/identity/token", data={"grant_type": GRANT, "apikey": "nope"}
        ) as response:
            assert response.status == 400
            assert "API key" in _error_message(await response.json())
        async with client.http.post(
            f"{client.base}/identity/token", data={"grant_type": "password", "apikey": "bob-key"}
        ) as response:
            assert response.status == 400


async def test_missing_forged_malformed_and_expired_tokens_are_401(tmp_path) -> None:
    clock = FakeClock()
    async with running_server(make_config(tmp_path, clock=clock, token_ttl=600)) as client:
        token = await client.token()
        await _still_serving(client, token)

        status, body = await client.call("GET", "/backends", None)
        assert status == 401 and "Authorization" in _error_message(body)

        forged = jwt.encode(
            {"sub": "alice", "iat": int(clock.now), "exp": int(clock.now) + 600}, b"x" * 32, algorithm="HS256"
        )
        status, body = await client.call("GET", "/backends", forged)
        assert status == 401 and "invalid access token" in _error_message(body)

        header, claims, signature = token.split(".")
        raised = json.loads(base64.urlsafe_b64decode(claims + "=="))
        raised["sub"] = "bob"  # a tampered payload under alice's signature
        tampered = ".".join(
            [header, base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode(), signature]
        )
        status, _ = await client.call("GET", "/backends", tampered)
        assert status == 401

        unsigned = jwt.encode(
            {"sub": "alice", "iat": int(clock.now), "exp": int(clock.now) + 600}, None, algorithm="none"
        )
        assert (await client.call("GET", "/backends", unsigned))[0] == 401
        assert (await client.call("GET", "/backends", "not-a-jwt"))[0] == 401

        clock.now += 599
        await _still_serving(client, token)
        clock.now += 1
        status, body = await client.call("GET", "/jobs", token)
        assert status == 401 and "expired" in _error_message(body)
        await _still_serving(client, await client.token())


async def test_tokens_survive_a_restart_on_the_same_database(tmp_path) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as client:
        token = await client.token()
    assert not [t for t in threading.enumerate() if t.name.startswith("aqrt-server-db")]  # the store's thread ended
    async with running_server(config) as client:
        await _still_serving(client, token)
    other_keys = make_config(tmp_path, api_keys={"carol-key": "carol"})
    async with running_server(other_keys) as client:  # alice's key is gone: so is her access
        status, body = await client.call("GET", "/backends", token)
        assert status == 401 and "no known user" in _error_message(body)


async def test_an_internal_error_is_a_json_500_and_the_server_keeps_serving(tmp_path, monkeypatch) -> None:
    from aqrt.server.runtime import RuntimeServer

    calls = []

    def broken(self) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return 0

    monkeypatch.setattr(RuntimeServer, "queue_length", broken)
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        status, body = await client.call("GET", "/backends", token)
        assert status == 500 and _error_message(body) == "internal server error"  # no internals leaked
        await _still_serving(client, token)


async def test_many_concurrent_submissions_from_two_users(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        tokens = {"alice": await client.token("alice-key"), "bob": await client.token("bob-key")}
        angles = np.linspace(0, np.pi, 40)

        async def one(user: str, angle: float) -> tuple[str, str, float]:
            job_id = await client.submit(tokens[user], "estimator", [(rotation(), "Z", [[angle]])])
            return user, job_id, angle

        submitted = await asyncio.gather(*(one("alice" if i % 2 else "bob", a) for i, a in enumerate(angles)))
        for user, job_id, angle in submitted:
            assert (await client.wait_final(tokens[user], job_id))["state"]["status"] == "Completed"
            result = await client.result(tokens[user], job_id)
            np.testing.assert_allclose(result[0].data.evs, [np.cos(angle)], atol=1e-12)
        for user, token in tokens.items():
            _, listing = await client.call("GET", "/jobs", token, params={"limit": "100"})
            assert listing["count"] == 20
            assert {job["id"] for job in listing["jobs"]} == {j for u, j, _ in submitted if u == user}


async def test_unknown_routes_and_methods_get_json_errors(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        status, body = await client.call("GET", "/nowhere", token)
        assert status == 404 and _error_message(body) == "Not Found"
        status, body = await client.call("PUT", "/backends", token)
        assert status == 405 and _error_message(body) == "Method Not Allowed"
        status, body = await client.call("GET", "/backends/ibm_elsewhere/configuration", token)
        assert status == 404 and "ibm_elsewhere" in _error_message(body)
        await _still_serving(client, token)


# -- isolation --------------------------------------------------------------------------------------


async def test_users_see_only_their_own_jobs_and_sessions(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        alice, bob = await client.token("alice-key"), await client.token("bob-key")
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        await client.wait_final(alice, job_id)
        status, session = await client.call(
            "POST", "/sessions", alice, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        assert status == 200

        for method, path in [
            ("GET", f"/jobs/{job_id}"),
            ("GET", f"/jobs/{job_id}/results"),
            ("GET", f"/jobs/{job_id}/metrics"),
            ("POST", f"/jobs/{job_id}/cancel"),
            ("DELETE", f"/jobs/{job_id}"),
            ("GET", f"/jobs/{job_id}/logs"),
            ("GET", f"/sessions/{session['id']}"),
            ("DELETE", f"/sessions/{session['id']}/close"),
        ]:
            status, body = await client.call(method, path, bob)
            assert status == 404, (method, path, body)
        status, body = await client.call("PUT", f"/jobs/{job_id}/tags", bob, body={"tags": ["mine"]})
        assert status == 404
        status, body = await client.call("PATCH", f"/sessions/{session['id']}", bob, body={"accepting_jobs": False})
        assert status == 404
        status, body = await client.submit_raw(bob, session_id=session["id"])
        assert status == 404, body

        status, listing = await client.call("GET", "/jobs", bob)
        assert status == 200 and listing["count"] == 0 and listing["jobs"] == []
        status, listing = await client.call("GET", "/jobs", alice)
        assert [job["id"] for job in listing["jobs"]] == [job_id]
        status, details = await client.call("GET", f"/sessions/{session['id']}", alice)
        assert status == 200 and details["accepting_jobs"] is True


# -- bad requests -----------------------------------------------------------------------------------


async def test_oversized_body_is_413_and_the_server_keeps_serving(tmp_path) -> None:
    async with running_server(make_config(tmp_path, max_body_bytes=64 * 1024)) as client:
        token = await client.token()
        status, body = await client.call("POST", "/jobs", token, data=b"{" + b" " * (100 * 1024) + b"}")
        assert status == 413 and "at most 65536 bytes" in _error_message(body)
        await _still_serving(client, token)
        job_id = await client.submit(token, "estimator", [(bell(), "ZZ")])
        assert (await client.wait_final(token, job_id))["state"]["status"] == "Completed"


async def test_malformed_json_and_unknown_types_are_400(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        status, body = await client.call("POST", "/jobs", token, data=b'{"program_id": "estimator", ')
        assert status == 400 and "not valid JSON" in _error_message(body)
        await _still_serving(client, token)

        pubs = pubs_to_wire("estimator", [(bell(), "ZZ")])
        pubs[0][2] = {"__type__": "pickle", "__value__": "gASV"}
        status, body = await client.call(
            "POST",
            "/jobs",
            token,
            body={"program_id": "estimator", "backend": "aqrt_statevector", "params": {"pubs": pubs, "version": 2}},
        )
        assert status == 400 and "pickle" in _error_message(body), body
        await _still_serving(client, token)

        status, body = await client.call(
            "POST",
            "/jobs",
            token,
            body={
                "program_id": "estimator",
                "backend": "aqrt_statevector",
                "params": {
                    "pubs": pubs_to_wire("estimator", [(bell(), "ZZ")]),
                    "version": 2,
                    "options": {"__type__": "Unknown", "__value__": 1},
                },
            },
        )
        assert status == 400 and "Unknown" in _error_message(body)

        status, body = await client.call("POST", "/jobs", token, body=["not", "an", "object"])
        assert status == 400
        status, body = await client.call(
            "POST", "/jobs", token, body={"program_id": "qaoa", "backend": "aqrt_statevector", "params": {"pubs": []}}
        )
        assert status == 404 and "qaoa" in _error_message(body)
        status, body = await client.call(
            "POST", "/jobs", token, body={"program_id": "sampler", "backend": "ibm_nowhere", "params": {"pubs": []}}
        )
        assert status == 404 and "ibm_nowhere" in _error_message(body)
        await _still_serving(client, token)


async def test_bad_pubs_are_400_naming_the_pub(tmp_path) -> None:
    async with running_server(make_config(tmp_path, max_qubits=6, max_circuit_ops=50)) as client:
        token = await client.token()
        good = pubs_to_wire("estimator", [(bell(), "ZZ")])[0]
        two = rotation()
        two.rx(Parameter("phi"), 0)
        unbound = pubs_to_wire("estimator", [(two, "Z", [[0.1, 0.2]])])[0]
        unbound[2] = to_jsonable(np.array([[0.1]]))  # one value for two parameters
        not_finite = pubs_to_wire("estimator", [(rotation(), "Z", [[0.1]])])[0]
        not_finite[2] = to_jsonable(np.array([[np.nan]]))
        for pubs, needle in [
            ([good, unbound], "PUB 1"),
            ([good, good, not_finite], "PUB 2"),
            ([good, [good[0], [{"ZZZ": 1.0}], None, None]], "PUB 1"),
            (pubs_to_wire("estimator", [(slow_circuit(7, 1), "Z" * 7)]), "PUB 0: the circuit has 7 qubits"),
            (pubs_to_wire("estimator", [(bell(), "ZZ"), (slow_circuit(6, 10), "Z" * 6)]), "PUB 1: the circuit has"),
        ]:
            status, body = await client.call(
                "POST",
                "/jobs",
                token,
                body={"program_id": "estimator", "backend": "aqrt_statevector", "params": {"pubs": pubs, "version": 2}},
            )
            assert status == 400, body
            assert needle in _error_message(body), _error_message(body)
            await _still_serving(client, token)
        status, listing = await client.call("GET", "/jobs", token)
        assert listing["count"] == 0  # nothing refused was stored


async def test_payload_limits_pub_count_and_inflated_size(tmp_path) -> None:
    async with running_server(make_config(tmp_path, max_pubs=3, max_decompressed_bytes=100_000)) as client:
        token = await client.token()
        status, body = await client.submit_raw(token, pubs=[(bell(), "ZZ")] * 4)
        assert status == 400 and "at most 3 PUBs" in _error_message(body)
        bomb = pubs_to_wire("estimator", [(rotation(), "Z", [[0.1]])])
        bomb[0][2] = to_jsonable(np.zeros((20_000, 1)))  # 160 kB of zeros, a few hundred bytes zipped
        status, body = await client.call(
            "POST",
            "/jobs",
            token,
            body={"program_id": "estimator", "backend": "aqrt_statevector", "params": {"pubs": bomb, "version": 2}},
        )
        assert status == 400 and "exceeds the limit" in _error_message(body), body
        await _still_serving(client, token)


# -- results equal the local engine's ---------------------------------------------------------------


async def test_job_mode_results_equal_the_local_engine(tmp_path) -> None:
    observables = SparsePauliOp.from_list([("ZZ", 1.0), ("XX", 0.5), ("IY", -0.25)])
    estimator_pubs = [(bell(), observables), (rotation(), "Z", np.linspace(0, np.pi, 7)[:, None])]
    sampler_pubs = [(measured_bell(), None, 333)]
    local = LocalService().backend()
    expected_evs = await Estimator(mode=local).run(estimator_pubs)
    expected_counts = await Sampler(mode=local, options=Options(seed=11)).run(sampler_pubs)

    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        estimator_id = await client.submit(token, "estimator", estimator_pubs)
        sampler_id = await client.submit(token, "sampler", sampler_pubs, options={"simulator": {"seed_simulator": 11}})
        for job_id in (estimator_id, sampler_id):
            job = await client.wait_final(token, job_id)
            assert job["state"]["status"] == "Completed" and job["session_id"] is None
        got = await client.result(token, estimator_id)
        for mine, theirs in zip(got, expected_evs, strict=True):
            np.testing.assert_array_equal(mine.data.evs, theirs.data.evs)
        assert got.metadata["job_id"] == estimator_id
        sampled = await client.result(token, sampler_id)
        assert sampled[0].data.meas.get_counts() == expected_counts[0].data.meas.get_counts()
        assert sampled[0].data.meas.num_shots == 333

        status, metrics = await client.call("GET", f"/jobs/{estimator_id}/metrics", token)
        assert status == 200 and metrics["timestamps"]["finished"] is not None
        assert metrics["usage"]["status"] == "final"


async def test_session_and_batch_jobs_equal_the_local_engine(tmp_path) -> None:
    pubs = [(rotation(), SparsePauliOp.from_list([("Z", 1.0), ("X", 2.0)]), np.linspace(0, 2, 5)[:, None])]
    local = LocalService()
    async with Session(local) as session:
        expected = await Estimator(mode=session).run(pubs)
    async with Batch(local) as batch:
        expected_batch = await Estimator(mode=batch).run(pubs)

    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        for mode, reference in (("dedicated", expected), ("batch", expected_batch)):
            status, session = await client.call(
                "POST",
                "/sessions",
                token,
                body={"mode": mode, "backend": "aqrt_statevector", "instance": CRN, "max_ttl": 600},
            )
            assert status == 200, session
            assert session["mode"] == mode and session["state"] == "open" and session["max_ttl"] == 600
            job_ids = [await client.submit(token, "estimator", pubs, session_id=session["id"]) for _ in range(3)]
            for job_id in job_ids:
                job = await client.wait_final(token, job_id)
                assert job["state"]["status"] == "Completed" and job["session_id"] == session["id"]
                result = await client.result(token, job_id)
                np.testing.assert_array_equal(result[0].data.evs, reference[0].data.evs)
            status, details = await client.call("GET", f"/sessions/{session['id']}", token)
            assert details["state"] == "active" and details["accepting_jobs"] is True
            assert details["interactive_ttl"] == (300 if mode == "dedicated" else None)
            assert details["elapsed_time"] > 0 and details["started_at"] is not None
            assert 0 < details["active_ttl"] <= 600
            status, listing = await client.call("GET", "/jobs", token, params={"session_id": session["id"]})
            assert sorted(job["id"] for job in listing["jobs"]) == sorted(job_ids)


# -- session close / cancel / expiry ----------------------------------------------------------------


async def test_closing_a_session_refuses_new_jobs_and_finishes_submitted_ones(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        job_ids = [
            await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"]) for _ in range(3)
        ]
        status, _ = await client.call("PATCH", f"/sessions/{session['id']}", token, body={"accepting_jobs": False})
        assert status == 204
        status, details = await client.call("GET", f"/sessions/{session['id']}", token)
        assert details["accepting_jobs"] is False
        status, body = await client.submit_raw(token, session_id=session["id"])
        assert status == 409 and "closed" in _error_message(body)
        for job_id in job_ids:
            assert (await client.wait_final(token, job_id))["state"]["status"] == "Completed"
        async with asyncio.timeout(30):
            while (await client.call("GET", f"/sessions/{session['id']}", token))[1]["state"] != "closed":
                await asyncio.sleep(0.02)
        status, _ = await client.call("PATCH", f"/sessions/{session['id']}", token, body={"accepting_jobs": True})
        assert status == 400


async def test_cancelling_a_session_cancels_its_unfinished_jobs(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        slow = await client.submit(token, "estimator", [(slow_circuit(), "Z" * 22)], session_id=session["id"])
        queued = [await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"]) for _ in range(2)]
        await client.wait_status(token, slow, "Running")
        status, _ = await client.call("DELETE", f"/sessions/{session['id']}/close", token)
        assert status == 204
        for job_id in [slow, *queued]:
            job = await client.wait_final(token, job_id)
            assert job["state"]["status"] == "Cancelled", job
        status, _ = await client.call("GET", f"/jobs/{queued[0]}/results", token)
        assert status == 409
        status, details = await client.call("GET", f"/sessions/{session['id']}", token)
        assert details["accepting_jobs"] is False


async def test_a_cancelled_first_job_fails_the_session_s_queued_jobs(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        first = await client.submit(token, "estimator", [(slow_circuit(), "Z" * 22)], session_id=session["id"])
        second = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"])
        await client.wait_status(token, first, "Running")
        status, _ = await client.call("POST", f"/jobs/{first}/cancel", token)
        assert status == 204
        assert (await client.wait_final(token, first))["state"]["status"] == "Cancelled"
        job = await client.wait_final(token, second)
        assert job["state"]["status"] == "Failed" and job["state"]["reason_code"] == 1219
        assert "first job" in job["state"]["reason"]


async def test_session_expires_after_max_ttl_from_its_first_job(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector", "max_ttl": 1}
        )
        first = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"])
        assert (await client.wait_final(token, first))["state"]["status"] == "Completed"
        await asyncio.sleep(1.05)  # real time: the session clock is the server loop's
        status, details = await client.call("GET", f"/sessions/{session['id']}", token)
        assert details["state"] == "closed" and details["accepting_jobs"] is False
        assert details["closed_reason"] == "max_ttl reached"
        async with asyncio.timeout(10):  # recorded as closed for good (a restart keeps it closed)
            while (await client.call("GET", f"/sessions/{session['id']}", token))[1].get("closed_reason") is None:
                await asyncio.sleep(0.01)
        status, body = await client.submit_raw(token, session_id=session["id"])
        assert status == 409 and "expired" in _error_message(body)
        status, body = await client.call(
            "POST", "/sessions", token, body={"mode": "batch", "backend": "aqrt_statevector", "max_ttl": 10**9}
        )
        assert status == 400 and "max_ttl" in _error_message(body)


async def test_an_idle_dedicated_session_turns_inactive_and_its_next_job_reactivates_it(tmp_path) -> None:
    async with running_server(make_config(tmp_path, interactive_ttl=1)) as client:
        token = await client.token()
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        assert session["interactive_ttl"] == 1 and session["state"] == "open"
        first = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"])
        await client.wait_final(token, first)
        assert (await client.call("GET", f"/sessions/{session['id']}", token))[1]["state"] == "active"
        await asyncio.sleep(1.05)  # real time: the server loop's clock
        assert (await client.call("GET", f"/sessions/{session['id']}", token))[1]["state"] == "inactive"
        second = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"])
        assert (await client.wait_final(token, second))["state"]["status"] == "Completed"
        _, details = await client.call("GET", f"/sessions/{session['id']}", token)
        assert details["state"] == "active" and details["accepting_jobs"] is True


# -- jobs: cancel, deadlines, listing ---------------------------------------------------------------


async def test_cancel_a_running_job_then_cancel_again_is_409(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        job_id = await client.submit(token, "estimator", [(slow_circuit(), "Z" * 22)])
        await client.wait_status(token, job_id, "Running")
        assert (await client.call("POST", f"/jobs/{job_id}/cancel", token))[0] == 204
        assert (await client.wait_final(token, job_id))["state"]["status"] == "Cancelled"
        status, body = await client.call("POST", f"/jobs/{job_id}/cancel", token)
        assert status == 409 and "Cancelled" in _error_message(body)
        running = await client.submit(token, "estimator", [(slow_circuit(), "Z" * 22)])
        status, body = await client.call("DELETE", f"/jobs/{running}", token)
        assert status == 409 and "cancel it first" in _error_message(body)
        assert (await client.call("POST", f"/jobs/{running}/cancel", token))[0] == 204
        await client.wait_final(token, running)
        assert (await client.call("DELETE", f"/jobs/{running}", token))[0] == 204
        assert (await client.call("GET", f"/jobs/{running}", token))[0] == 404
        assert (await client.call("POST", "/jobs/nosuchjob/cancel", token))[0] == 404


async def test_a_job_past_its_cost_fails_with_reason_code_1305(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        job_id = await client.submit(token, "estimator", [(slow_circuit(), "Z" * 22)], cost=1)
        job = await client.wait_final(token, job_id)
        assert job["state"]["status"] == "Failed" and job["state"]["reason_code"] == 1305
        assert "max_execution_time" in job["state"]["reason"]
        async with client.http.get(
            f"{client.base}/api/v1/jobs/{job_id}/results", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200 and "has failed" in await response.text()


async def test_listing_filters_paginates_and_sorts(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        a = await client.submit(token, "estimator", [(bell(), "ZZ")], tags=["a"])
        ab = await client.submit(token, "sampler", [(measured_bell(),)], tags=["a", "b"])
        plain = await client.submit(token, "estimator", [(bell(), "XX")])
        for job_id in (a, ab, plain):
            await client.wait_final(token, job_id)

        async def ids(**params) -> tuple[int, list[str]]:
            status, listing = await client.call("GET", "/jobs", token, params=params)
            assert status == 200, listing
            return listing["count"], [job["id"] for job in listing["jobs"]]

        assert await ids() == (3, [plain, ab, a])  # newest first
        assert await ids(sort="ASC") == (3, [a, ab, plain])
        assert await ids(tags="a") == (2, [ab, a])
        assert await ids(tags=["a", "b"]) == (1, [ab])
        assert await ids(program="sampler") == (1, [ab])
        assert await ids(pending="true") == (0, [])
        assert await ids(pending="false") == (3, [plain, ab, a])
        assert await ids(limit="1", offset="1") == (3, [ab])
        assert await ids(backend="other") == (0, [])
        assert await ids(created_after="2000-01-01T00:00:00+00:00") == (3, [plain, ab, a])
        assert await ids(created_before="2000-01-01T00:00:00") == (0, [])
        status, body = await client.call("GET", "/jobs", token, params={"limit": "lots"})
        assert status == 400 and "limit" in _error_message(body)


# -- idempotent submission --------------------------------------------------------------------------
# Each payload is encoded once and posted as is, like a client's repeat (a new circuit gets a new
# automatic name, so encoding it again would make a different request).


def _job_request(program: str = "estimator", pubs: list | None = None, **extra) -> dict:
    body = {
        "program_id": program,
        "backend": "aqrt_statevector",
        "params": {"pubs": pubs_to_wire(program, pubs or [(bell(), "ZZ")]), "options": {}, "version": 2},
    }
    body.update(extra)
    return body


async def _post(client, token: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with client.http.post(f"{client.base}/api/v1/jobs", data=json.dumps(body), headers=headers) as response:
        return response.status, await response.json()


async def _job_ids(client, token: str) -> list[str]:
    status, listing = await client.call("GET", "/jobs", token, params={"limit": "100"})
    assert status == 200
    return [job["id"] for job in listing["jobs"]]


async def test_concurrent_posts_with_one_idempotency_tag_make_one_job(tmp_path) -> None:
    from aqrt.backends.ibm.rest import IDEMPOTENCY_TAG_PREFIX

    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        body = _job_request(tags=["mine", IDEMPOTENCY_TAG_PREFIX + "k1"])
        answers = await asyncio.gather(*(_post(client, token, body) for _ in range(8)))
        assert [status for status, _ in answers] == [200] * 8, answers
        ids = {answer["id"] for _, answer in answers}
        assert len(ids) == 1
        (job_id,) = ids
        assert await _job_ids(client, token) == [job_id]
        assert (await client.wait_final(token, job_id))["state"]["status"] == "Completed"
        np.testing.assert_allclose((await client.result(token, job_id))[0].data.evs, 1.0, atol=1e-12)
        # Later too, after the job finished: the same job.
        status, again = await _post(client, token, body)
        assert status == 200 and again == answers[0][1]
        assert await _job_ids(client, token) == [job_id]
        # Deleting the job frees its key.
        status, _ = await client.call("DELETE", f"/jobs/{job_id}", token)
        assert status == 204
        status, fresh = await _post(client, token, body)
        assert status == 200 and fresh["id"] != job_id
        assert await _job_ids(client, token) == [fresh["id"]]


async def test_the_same_key_of_another_user_makes_their_own_job(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        alice, bob = await client.token("alice-key"), await client.token("bob-key")
        body = _job_request(tags=["aqrt-idem-shared"])
        (_, first), (_, second) = await asyncio.gather(_post(client, alice, body), _post(client, bob, body))
        assert first["id"] != second["id"]
        assert await _job_ids(client, alice) == [first["id"]]
        assert await _job_ids(client, bob) == [second["id"]]
        for token, job_id in ((alice, first["id"]), (bob, second["id"])):
            assert (await client.wait_final(token, job_id))["state"]["status"] == "Completed"


async def test_the_same_key_with_another_request_is_409(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        body = _job_request(tags=["aqrt-idem-k2"])
        status, first = await _post(client, token, body)
        assert status == 200
        other_params = {**body["params"], "options": {"default_shots": 7}}
        for changed in (
            _job_request(tags=["aqrt-idem-k2"]),  # another circuit (its automatic name differs)
            _job_request("sampler", [(measured_bell(),)], tags=["aqrt-idem-k2"]),
            {**body, "params": other_params},
        ):
            status, answer = await _post(client, token, changed)
            assert status == 409, (changed, answer)
            message = _error_message(answer)
            assert "'k2'" in message and first["id"] in message and "different request" in message
        # Tags and cost are not part of the request's identity.
        status, same = await _post(client, token, {**body, "tags": ["aqrt-idem-k2", "extra"], "cost": 30})
        assert status == 200 and same["id"] == first["id"]
        assert await _job_ids(client, token) == [first["id"]]


async def test_the_idempotency_key_header_dedupes_like_the_tag(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        body = _job_request()
        answers = await asyncio.gather(*(_post(client, token, body, key="hdr-1") for _ in range(4)))
        assert [status for status, _ in answers] == [200] * 4, answers
        assert len({answer["id"] for _, answer in answers}) == 1
        job_id = answers[0][1]["id"]
        # The header and the tag name the same key.
        status, tagged = await _post(client, token, {**body, "tags": ["aqrt-idem-hdr-1"]})
        assert status == 200 and tagged["id"] == job_id
        status, both = await _post(client, token, {**body, "tags": ["aqrt-idem-hdr-1"]}, key="hdr-1")
        assert status == 200 and both["id"] == job_id
        assert await _job_ids(client, token) == [job_id]

        status, answer = await _post(client, token, {**body, "tags": ["aqrt-idem-other"]}, key="hdr-1")
        assert status == 400 and "different keys" in _error_message(answer)
        status, answer = await _post(client, token, body, key="x" * 300)
        assert status == 400 and "1..255" in _error_message(answer)
        assert await _job_ids(client, token) == [job_id]


async def test_the_store_keeps_one_job_per_user_and_key_atomically(tmp_path) -> None:
    from aqrt.server.store import Store

    store = await Store.open(tmp_path / "store.sqlite3")
    try:

        def row(job_id: str, user: str) -> dict:
            return {
                "id": job_id,
                "user": user,
                "program": "estimator",
                "backend": "b",
                "status": "Queued",
                "created": "2026-01-01T00:00:00+00:00",
            }

        answers = await asyncio.gather(
            *(store.insert_job(row(f"j{i}", "alice"), "{}", ("k", "d")) for i in range(5)),
            store.insert_job(row("b0", "bob"), "{}", ("k", "d")),
        )
        assert answers[0] is None and answers[-1] is None  # the store's thread runs them in order
        assert all(a == {"job_id": "j0", "digest": "d", "backend": "b", "session_id": None} for a in answers[1:5])
        count, jobs = await store.list_jobs("alice", {}, limit=10, offset=0, descending=False)
        assert count == 1 and jobs[0]["id"] == "j0"
        assert (await store.idempotent_job("bob", "k"))["job_id"] == "b0"
        assert await store.delete_job("j0", "alice")
        assert await store.idempotent_job("alice", "k") is None
        assert await store.insert_job(row("j9", "alice"), "{}", ("k", "d2")) is None
    finally:
        await store.close()


async def test_without_the_in_process_lock_the_store_still_makes_one_job(tmp_path, monkeypatch) -> None:
    """Two submitters the key lock does not serialise (as two processes on one database would
    be): both pass the lookup, the store's (user, key) key lets one insert; the other's engine
    job is cancelled and it answers with the stored job."""
    import contextlib

    from aqrt.server.idempotency import KeyLocks
    from aqrt.server.store import Store

    @contextlib.asynccontextmanager
    async def no_lock(self, user: str, key: str):
        yield

    lookup, inserted = Store.idempotent_job, []
    both_looked = asyncio.Barrier(2)

    async def looking_together(self, user: str, key: str):
        answer = await lookup(self, user, key)
        await both_looked.wait()
        return answer

    insert_job = Store.insert_job

    async def counted_insert_job(self, job, params_json, idempotency=None):
        answer = await insert_job(self, job, params_json, idempotency)
        inserted.append(answer is None)
        return answer

    monkeypatch.setattr(KeyLocks, "hold", no_lock)
    monkeypatch.setattr(Store, "idempotent_job", looking_together)
    monkeypatch.setattr(Store, "insert_job", counted_insert_job)
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        body = _job_request(tags=["aqrt-idem-race"])
        answers = await asyncio.gather(_post(client, token, body), _post(client, token, body))
        assert [status for status, _ in answers] == [200, 200], answers
        assert sorted(inserted) == [False, True]
        (job_id,) = {answer["id"] for _, answer in answers}
        assert await _job_ids(client, token) == [job_id]
        assert (await client.wait_final(token, job_id))["state"]["status"] == "Completed"
        await _still_serving(client, token)


# -- a job's params in its answer --------------------------------------------------------------------


async def test_a_jobs_answer_carries_its_stored_params_text_as_parsing_and_rewriting_it_would() -> None:
    """``GET /jobs/{id}`` puts the params text stored at submission into the answer as it is:
    byte for byte what parsing it and writing the answer whole gives (floats, NaN, non-ASCII
    tags, nested pubs), and ``params`` is the answer's last field."""
    from aqrt.server.job_routes import _job_bytes_with_params
    from aqrt.server.responses import job_response

    params = {
        "pubs": pubs_to_wire("estimator", [(bell(), "ZZ", None, 0.1)]),
        "options": {"seed": 3, "twirling": {"enable_gates": True}, "nan": float("nan"), "x": [1e-300, -0.0, 2.5]},
        "version": 2,
        "note": 'héllo \u2603 "quoted"',
    }
    row = {
        "id": "job-1",
        "backend": "aqrt_statevector",
        "program": "estimator",
        "status": "Completed",
        "created": "2026-12-05T00:00:00Z",
        "user": "alice",
        "finished": "2026-12-05T00:00:01Z",
        "session_id": None,
        "tags": ["ünïcode", "plain"],
        "cost": 7,
        "usage_seconds": 0.25,
    }
    text = json.dumps(params)  # as the server stores it at submission
    answer = _job_bytes_with_params({**row, "params": text})
    assert answer == json.dumps(job_response(row, params=json.loads(text))).encode()
    decoded = json.loads(answer)
    assert list(decoded)[-1] == "params" and json.dumps(decoded["params"]) == text


async def test_getting_a_job_returns_the_params_it_was_submitted_with(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        body = _job_request(pubs=[(bell(), "ZZ", None, 0.05)], tags=["t1"])
        status, answer = await _post(client, token, body)
        assert status == 200, answer
        status, job = await client.call("GET", f"/jobs/{answer['id']}", token)
        assert status == 200
        assert job["params"] == body["params"] and job["id"] == answer["id"] and job["tags"] == ["t1"]
        status, bare = await client.call("GET", f"/jobs/{answer['id']}", token, params={"exclude_params": "true"})
        assert status == 200 and "params" not in bare
