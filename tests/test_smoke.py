"""A first pass through the app: it starts, serves its OpenAPI document and refuses strangers."""


def test_openapi_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.")


def test_api_refuses_without_token(client):
    response = client.get("/api/v1/households/1")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "unauthenticated"
