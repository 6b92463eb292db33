//! The published contract: `openapi/openapi.yaml` exactly as committed (embedded at build time),
//! the same document as JSON, and a human-readable reference at `/docs` (Swagger UI, its assets
//! embedded in the binary: no internet needed).

use std::sync::OnceLock;

use actix_web::HttpResponse;

use crate::error::AppError;

/// The contract, as committed in `openapi/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../openapi/openapi.yaml");

/// The contract as JSON, converted once.
pub fn openapi_json() -> Result<&'static str, AppError> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_yaml::from_str::<serde_json::Value>(OPENAPI_YAML)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::to_string(&v).map_err(|e| e.to_string()))
    })
    .as_deref()
    .map_err(|e| AppError::Internal(format!("openapi.yaml does not convert to JSON: {e}")))
}

/// The methods the contract lists for a path pattern (`/api/v1/cases/{id}`), upper-case and
/// comma-separated, for the `Allow` header of a 405. Empty for a path the
/// contract does not know.
pub fn allowed_methods(pattern: &str) -> String {
    static PATHS: OnceLock<serde_json::Value> = OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        serde_yaml::from_str::<serde_json::Value>(OPENAPI_YAML)
            .ok()
            .and_then(|doc| doc.get("paths").cloned())
            .unwrap_or_default()
    });
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    paths
        .get(pattern)
        .and_then(serde_json::Value::as_object)
        .map(|item| {
            item.keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(|k| k.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /api/v1/openapi.json`.
pub async fn json() -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(openapi_json()?))
}

/// `GET /api/v1/openapi.yaml`.
pub async fn yaml() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(OPENAPI_YAML)
}

/// The reference page. Swagger UI's own index is only at `/docs/` and would ask an online
/// validator for a badge; this one is at `/docs`, points at our JSON and turns the validator off,
/// so nothing is fetched from another host.
const DOCS_PAGE: &str = r##"<!DOCTYPE html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>Minsheng API 民生</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.onload = () => {
      window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
    };
  </script>
</body>
</html>
"##;

/// `GET /docs`.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(DOCS_PAGE)
}

/// Swagger UI's embedded scripts and styles under `/docs/…`.
pub fn assets() -> impl actix_web::dev::HttpServiceFactory {
    swagger_ui_dist::generate_scope(swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/api/v1/openapi.json"),
        title: Some("Minsheng API"),
    })
}
