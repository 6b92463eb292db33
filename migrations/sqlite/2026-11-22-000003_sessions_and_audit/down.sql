DROP TABLE admin_audit;
DROP TABLE personal_data_access;
DROP TABLE login_throttle;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
