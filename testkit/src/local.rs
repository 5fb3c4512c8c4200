//! The local AWS stack (moto's server, started by `scripts/stack`) as the tests see it: its endpoint,
//! the environment a function gets to reach it, SDK clients, and a few seeding helpers.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

/// The secret access key the functions run with: tests assert it never shows up in any output.
pub const TEST_SECRET_KEY: &str = "StackhandTestSecretKey/DoNotLog0123456789";
pub const TEST_ACCESS_KEY: &str = "AKIASTACKHANDTEST000";
pub const REGION: &str = "us-east-1";

/// moto's endpoint, from `STACKHAND_MOTO_URL` (set by `make test` / `scripts/stack env`).
pub fn moto_url() -> String {
    std::env::var("STACKHAND_MOTO_URL").unwrap_or_else(|_| {
        panic!("STACKHAND_MOTO_URL is not set: run the tests with `make test`, which starts the local AWS stack")
    })
}

/// The environment a function process needs to talk to `endpoint` through the SDK's standard variables.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    aws_env_in(endpoint, REGION)
}

/// [`aws_env`] in another region: moto keeps each region's resources apart, so a test that lists a
/// whole account (the scheduler) can have one to itself.
pub fn aws_env_in(endpoint: &str, region: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", region),
        ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// SDK configuration for the test's own calls to `endpoint`.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config_in(endpoint, REGION).await
}

/// [`sdk_config`] in another region.
pub async fn sdk_config_in(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(TEST_ACCESS_KEY, TEST_SECRET_KEY, None, None, "testkit"))
        .load()
        .await
}

/// [`sdk_config_in`] acting as `account`: moto scopes resources by the account a role was assumed in,
/// so a test (or the bench) can seed and check the spoke accounts of a multi-account run.
pub async fn sdk_config_as(endpoint: &str, account: &str, region: &str) -> SdkConfig {
    let own = sdk_config_in(endpoint, region).await;
    let out = aws_sdk_sts::Client::new(&own)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/seeding"))
        .role_session_name("testkit")
        .send()
        .await
        .expect("AssumeRole");
    let c = out.credentials().expect("credentials");
    let session = Some(c.session_token().to_owned());
    let credentials = Credentials::new(c.access_key_id(), c.secret_access_key(), session, None, "testkit");
    own.into_builder().credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(credentials)).build()
}

pub async fn ec2() -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(&moto_url()).await)
}

/// A VPC with one subnet per Availability Zone a, b, c of us-east-1.
pub struct Network {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
}

/// Creates a VPC `10.<octet>.0.0/16` with three subnets.
pub async fn network(ec2: &aws_sdk_ec2::Client, octet: u8) -> Network {
    let vpc = ec2.create_vpc().cidr_block(format!("10.{octet}.0.0/16")).send().await.expect("CreateVpc");
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
    let mut subnet_ids = Vec::new();
    for (i, az) in ["a", "b", "c"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.{octet}.{i}.0/24"))
            .availability_zone(format!("{REGION}{az}"))
            .send()
            .await
            .expect("CreateSubnet");
        subnet_ids.push(subnet.subnet().and_then(|s| s.subnet_id()).unwrap().to_owned());
    }
    Network { vpc_id, subnet_ids }
}

pub async fn security_group(ec2: &aws_sdk_ec2::Client, vpc_id: &str, name: &str) -> String {
    ec2.create_security_group()
        .vpc_id(vpc_id)
        .group_name(name)
        .description(format!("{name} (stackhand tests)"))
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id()
        .unwrap()
        .to_owned()
}

/// Creates an ENI with `description` (what AWS gives a load balancer's interfaces) and returns its
/// private IPv4 address. moto draws addresses at random and may hand one out twice in a subnet, which
/// AWS never does; so the address is chosen here, distinct for up to 250 interfaces per subnet.
pub async fn interface(ec2: &aws_sdk_ec2::Client, subnet_id: &str, description: &str, ipv6: Option<&str>) -> String {
    create_interface(ec2, subnet_id, description, ipv6, None).await
}

/// Like [`interface`], an interface as AWS makes it for a Network Load Balancer: through a
/// [`crate::ThrottlingProxy`] it is answered requester-managed, of type `network_load_balancer`
/// ([`crate::shapes`]). `description` is the load balancer's, `ELB net/<name>/<id>`.
pub async fn nlb_interface(
    ec2: &aws_sdk_ec2::Client,
    subnet_id: &str,
    description: &str,
    ipv6: Option<&str>,
) -> String {
    let marker = tags(ResourceType::NetworkInterface, &[(crate::shapes::AWS_MANAGED_TAG, "network_load_balancer")]);
    create_interface(ec2, subnet_id, description, ipv6, Some(marker)).await
}

async fn create_interface(
    ec2: &aws_sdk_ec2::Client,
    subnet_id: &str,
    description: &str,
    ipv6: Option<&str>,
    tags: Option<TagSpecification>,
) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let subnet = ec2.describe_subnets().subnet_ids(subnet_id).send().await.expect("DescribeSubnets");
    let cidr = subnet.subnets()[0].cidr_block().expect("the subnet's CIDR block");
    let base: std::net::Ipv4Addr = cidr.split('/').next().unwrap().parse().expect("an IPv4 CIDR block");
    // .0-.3 and .255 of a /24 are AWS's own.
    let address = std::net::Ipv4Addr::from(u32::from(base) + 4 + NEXT.fetch_add(1, Ordering::SeqCst) % 250);
    let mut req = ec2
        .create_network_interface()
        .subnet_id(subnet_id)
        .description(description)
        .private_ip_address(address.to_string())
        .set_tag_specifications(tags.map(|t| vec![t]));
    if let Some(v6) = ipv6 {
        req = req.ipv6_addresses(aws_sdk_ec2::types::InstanceIpv6Address::builder().ipv6_address(v6).build());
    }
    let eni = req.send().await.expect("CreateNetworkInterface");
    eni.network_interface().and_then(|n| n.private_ip_address()).unwrap().to_owned()
}

/// A tag specification for one resource type, for seeding.
pub fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    pairs
        .iter()
        .fold(TagSpecification::builder().resource_type(resource), |b, (k, v)| {
            b.tags(Tag::builder().key(*k).value(*v).build())
        })
        .build()
}

/// A real presigned S3 PUT URL from the emulator (path-style), and a reader for what was PUT there.
pub struct PresignedObject {
    pub url: String,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
}

impl PresignedObject {
    pub async fn create(bucket: &str, key: &str) -> Self {
        let config = sdk_config(&moto_url()).await;
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        let _ = s3.create_bucket().bucket(bucket).send().await;
        let presigned = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(7200)).unwrap())
            .await
            .expect("presign");
        Self { url: presigned.uri().to_owned(), s3, bucket: bucket.to_owned(), key: key.to_owned() }
    }

    /// The object's body, or `None` while nothing was PUT.
    pub async fn read(&self) -> Option<String> {
        let out = self.s3.get_object().bucket(&self.bucket).key(&self.key).send().await.ok()?;
        let bytes = out.body.collect().await.ok()?.into_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// An endpoint that accepts connections and never answers: a hanging AWS service.
pub async fn hanging_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

pub async fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(&moto_url()).await)
}

pub async fn secrets() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(&moto_url()).await)
}

/// The MariaDB account `scripts/stack up mariadb` creates for tests (loopback only).
pub const MARIADB_USER: &str = "stackhand";
pub const MARIADB_PASSWORD: &str = "stackhand-local-only";

/// MariaDB's TCP port, from `STACKHAND_MARIADB_PORT` (set by `make test` / `scripts/stack env`).
pub fn mariadb_port() -> u16 {
    std::env::var("STACKHAND_MARIADB_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or_else(|| {
        panic!("STACKHAND_MARIADB_PORT is not set: run the tests with `make test`, which starts MariaDB")
    })
}

/// A connection as the test account, for seeding and for looking at what a function did.
pub async fn mariadb() -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(mariadb_port())
        .user(Some(MARIADB_USER))
        .pass(Some(MARIADB_PASSWORD))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.expect("connect to the test MariaDB")
}

/// A TCP relay to `upstream` on its own port: nothing listens there until `after` (a database that
/// comes up some seconds late), and [`Relay::cut`] drops every connection it carries (a server killed
/// mid-script, as the client sees it).
pub struct Relay {
    pub port: u16,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    pub async fn start(after: Duration, upstream: u16) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let held = std::sync::Arc::clone(&connections);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the relay");
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { port, connections }
    }

    /// Drops every connection the relay carries now; new ones are still accepted.
    pub fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// Launches one instance in `subnet` with `tags` (moto's first image), returning its id.
pub async fn instance(ec2: &aws_sdk_ec2::Client, subnet: &str, tags_: &[(&str, &str)]) -> String {
    let image = ec2.describe_images().owners("amazon").send().await.expect("DescribeImages");
    let image = image.images().first().and_then(|i| i.image_id()).expect("an image").to_owned();
    let mut req = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .instance_type("t3.micro".into())
        .subnet_id(subnet);
    if !tags_.is_empty() {
        req = req.tag_specifications(tags(ResourceType::Instance, tags_));
    }
    let out = req.send().await.expect("RunInstances");
    out.instances()[0].instance_id().unwrap().to_owned()
}

/// Allocates a VPC Elastic IP with `tags_` and `stackhand:eip-bindable=true` (as the owner of a
/// stackhand stack tags the addresses stacks may bind), returning its allocation id.
pub async fn elastic_ip(ec2: &aws_sdk_ec2::Client, tags_: &[(&str, &str)]) -> String {
    let mut all = vec![("stackhand:eip-bindable", "true")];
    all.extend_from_slice(tags_);
    let req = ec2.allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc);
    let req = req.tag_specifications(tags(ResourceType::ElasticIp, &all));
    req.send().await.expect("AllocateAddress").allocation_id().unwrap().to_owned()
}

/// An address's current association: (association id, network interface id, instance id).
pub async fn association(
    ec2: &aws_sdk_ec2::Client,
    allocation: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let out = ec2.describe_addresses().allocation_ids(allocation).send().await.expect("DescribeAddresses");
    let a = &out.addresses()[0];
    (a.association_id().map(Into::into), a.network_interface_id().map(Into::into), a.instance_id().map(Into::into))
}

/// An address's tags, by key.
pub async fn address_tags(ec2: &aws_sdk_ec2::Client, allocation: &str) -> std::collections::BTreeMap<String, String> {
    let out = ec2.describe_addresses().allocation_ids(allocation).send().await.expect("DescribeAddresses");
    out.addresses()[0]
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
        .collect()
}
