//! The route table (all paths in one place) and the thin handlers behind it. Handlers extract,
//! call one unit of work in `crate::service` through `AppState::db`, and shape the response.

mod api_clients;
mod audit;
mod body;
mod cases;
mod docs;
mod exports;
mod health;
mod idempotent;
mod imports;
mod open311;
mod reference;
mod stats;
mod users;
mod webhooks;

pub use body::JsonBody;

use actix_web::{web, HttpRequest, HttpResponse, Resource};

use crate::error::{query_error, AppError};

/// A resource whose unsupported methods answer 405 problem+json.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// An Open311 resource: its unsupported methods answer in the Open311 error format.
fn open311_resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(open311::method_not_allowed))
}

/// The 405 answer, with `Allow` naming the path's methods. They are read from the contract, which
/// `tests/api/project.rs` holds to exactly this route table, so the two cannot drift apart.
async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let allow = req.match_pattern().map(|pattern| docs::allowed_methods(&pattern)).unwrap_or_default();
    Err(AppError::MethodNotAllowed { allow })
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound { detail: format!("no route for {}", req.path()) })
}

/// Decoded query pairs; unreadable query strings answer 400.
pub type QueryPairs = web::Query<Vec<(String, String)>>;

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
        .app_data(web::PathConfig::default().error_handler(|e, _| crate::error::path_error(e).into()))
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(
            web::scope("/api/v1")
                .service(resource("/openapi.json").route(web::get().to(docs::json)))
                .service(resource("/openapi.yaml").route(web::get().to(docs::yaml)))
                .service(resource("/auth/login").route(web::post().to(users::login)))
                .service(resource("/auth/refresh").route(web::post().to(users::refresh)))
                .service(resource("/auth/logout").route(web::post().to(users::logout)))
                .service(resource("/me").route(web::get().to(users::me)))
                .service(resource("/me/password").route(web::post().to(users::change_own_password)))
                .service(resource("/users").route(web::get().to(users::list)).route(web::post().to(users::create)))
                .service(resource("/users/{id}").route(web::get().to(users::get)).route(web::patch().to(users::update)))
                .service(resource("/users/{id}/password").route(web::post().to(users::reset_password)))
                .service(
                    resource("/api-clients")
                        .route(web::get().to(api_clients::list))
                        .route(web::post().to(api_clients::create)),
                )
                .service(
                    resource("/api-clients/{id}")
                        .route(web::get().to(api_clients::get))
                        .route(web::patch().to(api_clients::patch)),
                )
                .service(resource("/api-clients/{id}/rotate").route(web::post().to(api_clients::rotate)))
                .service(resource("/api-clients/{id}/revoke").route(web::post().to(api_clients::revoke)))
                .service(
                    resource("/jurisdictions")
                        .route(web::get().to(reference::list_jurisdictions))
                        .route(web::post().to(reference::create_jurisdiction)),
                )
                .service(
                    resource("/jurisdictions/{code}")
                        .route(web::get().to(reference::get_jurisdiction))
                        .route(web::patch().to(reference::patch_jurisdiction)),
                )
                .service(
                    resource("/departments")
                        .route(web::get().to(reference::list_departments))
                        .route(web::post().to(reference::create_department)),
                )
                .service(
                    resource("/departments/{id}")
                        .route(web::get().to(reference::get_department))
                        .route(web::patch().to(reference::patch_department)),
                )
                .service(
                    resource("/categories")
                        .route(web::get().to(reference::list_categories))
                        .route(web::post().to(reference::create_category)),
                )
                .service(
                    resource("/categories/{code}")
                        .route(web::get().to(reference::get_category))
                        .route(web::patch().to(reference::patch_category)),
                )
                .service(
                    resource("/programmes")
                        .route(web::get().to(reference::list_programmes))
                        .route(web::post().to(reference::create_programme)),
                )
                .service(
                    resource("/programmes/{id}")
                        .route(web::get().to(reference::get_programme))
                        .route(web::patch().to(reference::patch_programme)),
                )
                .service(resource("/cases").route(web::get().to(cases::list)).route(web::post().to(cases::create)))
                .service(resource("/cases/{id}").route(web::get().to(cases::get)))
                .service(resource("/cases/{id}/events").route(web::get().to(cases::events)))
                .service(resource("/stats/summary").route(web::get().to(stats::summary)))
                .service(resource("/stats/breakdown").route(web::get().to(stats::breakdown)))
                .service(resource("/stats/overdue").route(web::get().to(stats::overdue)))
                .service(resource("/programmes/{id}/progress").route(web::get().to(stats::progress)))
                .service(resource("/programmes/{id}/ledger.csv").route(web::get().to(exports::ledger)))
                .service(resource("/cases:import").route(web::post().to(imports::start)))
                .service(resource("/imports/{id}").route(web::get().to(imports::get)))
                .service(resource("/cases.csv").route(web::get().to(exports::cases)))
                .service(
                    resource("/webhooks").route(web::get().to(webhooks::list)).route(web::post().to(webhooks::create)),
                )
                .service(
                    resource("/webhooks/{id}")
                        .route(web::get().to(webhooks::get))
                        .route(web::patch().to(webhooks::update)),
                )
                .service(resource("/webhooks/{id}/deliveries").route(web::get().to(webhooks::deliveries)))
                .service(
                    resource("/webhooks/{id}/deliveries/{event_id}/redeliver")
                        .route(web::post().to(webhooks::redeliver)),
                )
                .service(resource("/audit/admin").route(web::get().to(audit::admin)))
                .service(resource("/audit/personal-data").route(web::get().to(audit::personal_data)))
                // One resource per lifecycle action, as in the contract (one operation each).
                .service(resource("/cases/{id}/actions/assign").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/reassign").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/acknowledge").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/return").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/resolve").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/verify").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/reject").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/close").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/dismiss").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/reopen").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/extend").route(web::post().to(cases::act)))
                .service(resource("/cases/{id}/actions/comment").route(web::post().to(cases::act))),
        )
        .service(resource("/docs").route(web::get().to(docs::page)))
        .service(docs::assets())
        .service(
            web::scope("/open311/v2")
                .service(open311_resource("/discovery.{format}").route(web::get().to(open311::discovery)))
                .service(open311_resource("/services.{format}").route(web::get().to(open311::services)))
                .service(
                    open311_resource("/services/{service_code}.{format}")
                        .route(web::get().to(open311::service_definition)),
                )
                .service(
                    open311_resource("/requests.{format}")
                        .route(web::get().to(open311::requests))
                        .route(web::post().to(open311::create_request)),
                )
                .service(
                    open311_resource("/requests/{service_request_id}.{format}").route(web::get().to(open311::request)),
                )
                .default_service(web::to(open311::no_route)),
        )
        .default_service(web::to(no_route));
}
