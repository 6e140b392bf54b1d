use super::*;

fn of(url: &str) -> Result<TlsRequest, SettingsError> {
    TlsRequest::of(&SecretUrl::new(url))
}

#[test]
fn prefer_is_the_default_as_in_libpq() {
    let request = of("postgres://app:pw@db:5432/app").unwrap();
    assert_eq!(request.mode, SslMode::Prefer);
    assert_eq!(request.check, Check::EncryptOnly);
    assert_eq!(
        request.client_url.expose(),
        "postgres://app:pw@db:5432/app?sslmode=prefer"
    );
}

#[test]
fn each_mode_checks_what_libpq_checks() {
    let file = || RootCerts::File(PathBuf::from("/etc/ca.pem"));
    let cases = [
        ("sslmode=disable", Check::None),
        ("sslmode=prefer&sslrootcert=/etc/ca.pem", Check::EncryptOnly),
        ("sslmode=require", Check::EncryptOnly),
        ("sslmode=require&sslrootcert=system", Check::EncryptOnly),
        // libpq: require with a root certificate file acts as verify-ca.
        (
            "sslmode=require&sslrootcert=/etc/ca.pem",
            Check::Chain(file()),
        ),
        ("sslmode=verify-ca", Check::Chain(RootCerts::System)),
        (
            "sslmode=verify-ca&sslrootcert=/etc/ca.pem",
            Check::Chain(file()),
        ),
        (
            "sslmode=verify-full",
            Check::ChainAndHost(RootCerts::System),
        ),
        (
            "sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full",
            Check::ChainAndHost(file()),
        ),
    ];
    for (query, check) in cases {
        let request = of(&format!("postgres://u@h/d?{query}")).unwrap();
        assert_eq!(request.check, check, "{query}");
    }
}

#[test]
fn tokio_postgres_gets_a_mode_it_knows_and_every_other_parameter_untouched() {
    let request = of(
        "postgres://u:p%40ss@h:5433/d?application_name=a+b%20c&sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5",
    )
    .unwrap();
    assert_eq!(
        request.client_url.expose(),
        "postgres://u:p%40ss@h:5433/d?application_name=a+b%20c&connect_timeout=5&sslmode=require"
    );
    assert_eq!(
        of("postgres://u@h/d?sslmode=disable")
            .unwrap()
            .client_url
            .expose(),
        "postgres://u@h/d?sslmode=disable"
    );
}

#[test]
fn a_wrong_value_names_the_setting_and_never_the_url() {
    for (url, problem) in [
        (
            "postgres://u:hunter2@h/d?sslmode=allow-ish",
            "sslmode must be one of",
        ),
        (
            "postgres://u:hunter2@h/d?sslmode=verify-full&sslrootcert=",
            "sslrootcert names no file",
        ),
        (
            "postgres://u:hunter2@h/d?sslcert=/c.pem",
            "client certificates",
        ),
    ] {
        let error = of(url).unwrap_err().to_string();
        assert!(
            error.starts_with("setting database.url (DATABASE_URL or CLERK_SYNC__DATABASE__URL): "),
            "{error}"
        );
        assert!(error.contains(problem), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}
