#!/bin/sh
# The `minio-setup` service (docker-compose.yaml), run once per `up` with MinIO's own client `mc`:
# the buckets, private, and one MinIO user per stage of the pipeline, each with a policy that
# allows what that stage does on its one bucket and nothing else. The root credentials serve this
# script only; no Airflow container holds them.
#
#   user (Airflow connection)          bucket         may
#   exports writer (shop_exports_writer) EXPORTS_BUCKET read, write, delete, list   the shop_export task
#   exports reader (shop_exports)      EXPORTS_BUCKET read, list                    the ingest (source-s3)
#   lake writer (lake)                 LAKE_BUCKET    read, write, delete, list     publish, raw history
#   lake reader (lake_reader)          LAKE_BUCKET    read, list                    DuckDB, dashboards
#
# Secrets stay off every command line (`ps` shows those): the root alias comes from MC_HOST_minio
# (mc reads it from the environment) and each user's secret key goes to `mc admin user add` on
# its standard input. Running it again changes nothing but the secrets (set to .env's again).
set -eu
: "${MC_HOST_minio:?MC_HOST_minio is not set (http://ROOT_USER:ROOT_PASSWORD@minio:9000)}"
: "${EXPORTS_BUCKET:?EXPORTS_BUCKET is not set}"
: "${LAKE_BUCKET:?LAKE_BUCKET is not set}"

for bucket in "$EXPORTS_BUCKET" "$LAKE_BUCKET"; do
  mc mb --ignore-existing "minio/$bucket"
  mc anonymous set none "minio/$bucket"  # no anonymous access, whatever was set before
done

READ='"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"'
WRITE="$READ"', "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:ListBucketMultipartUploads"'
policies=$(mktemp -d)

# stage NAME BUCKET ACTIONS ACCESS_KEY SECRET_KEY: policy NAME on BUCKET, user ACCESS_KEY attached to it
stage() {
  name=$1 bucket=$2 actions=$3 access_key=$4 secret_key=$5
  file="$policies/$name.json"
  printf '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [%s], "Resource": ["arn:aws:s3:::%s", "arn:aws:s3:::%s/*"]}]}\n' \
    "$actions" "$bucket" "$bucket" > "$file"
  mc admin policy create minio "$name" "$file"
  printf '%s\n' "$secret_key" | mc admin user add minio "$access_key"
  # attaching a policy the user already has is an error to mc ("no net effect"): not to us
  if ! out=$(mc admin policy attach minio "$name" --user "$access_key" 2>&1); then
    case "$out" in
      *"already in effect"* | *"no net effect"*) ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  echo "minio-setup: user $access_key ($name) on bucket $bucket"
}

stage exports-writer "$EXPORTS_BUCKET" "$WRITE" \
  "${S3_EXPORTS_WRITER_ACCESS_KEY:?S3_EXPORTS_WRITER_ACCESS_KEY is not set}" \
  "${S3_EXPORTS_WRITER_SECRET_KEY:?S3_EXPORTS_WRITER_SECRET_KEY is not set}"
stage exports-reader "$EXPORTS_BUCKET" "$READ" \
  "${S3_EXPORTS_READER_ACCESS_KEY:?S3_EXPORTS_READER_ACCESS_KEY is not set}" \
  "${S3_EXPORTS_READER_SECRET_KEY:?S3_EXPORTS_READER_SECRET_KEY is not set}"
stage lake-writer "$LAKE_BUCKET" "$WRITE" \
  "${S3_LAKE_WRITER_ACCESS_KEY:?S3_LAKE_WRITER_ACCESS_KEY is not set}" \
  "${S3_LAKE_WRITER_SECRET_KEY:?S3_LAKE_WRITER_SECRET_KEY is not set}"
stage lake-reader "$LAKE_BUCKET" "$READ" \
  "${S3_LAKE_READER_ACCESS_KEY:?S3_LAKE_READER_ACCESS_KEY is not set}" \
  "${S3_LAKE_READER_SECRET_KEY:?S3_LAKE_READER_SECRET_KEY is not set}"
rm -rf "$policies"
