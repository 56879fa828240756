import aiohttp
from tests.support.fake_openai import Reply
from tests.integration.realtime.support import account
from tests.integration.realtime.sse import sse_headers
import pytest
from tests.integration.realtime.conftest import REPLICA_ENV
@pytest.fixture
def cluster_env(engine):
    return {**REPLICA_ENV, "COLLABRY_ENGINE_URL": engine.url, "COLLABRY_SSE_HEARTBEAT": "1"}
async def test_dbg(cluster, engine):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text="a b c", delay=0.1))
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{cluster.replica_url(0)}/api/ai/chat", json={"message": "hi"}, headers=sse_headers(user.token))
        print(resp.status, dict(resp.headers))
        print(await resp.text())
    print(cluster.replicas[0].tail(40))
    assert False
