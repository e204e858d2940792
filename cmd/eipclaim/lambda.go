package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/awsenv"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/source"
)

// runLambda is `eipclaim lambda` (and the binary run as `bootstrap`, the
// provided.al2023 runtime's name for it): the off-box controller as an
// AWS Lambda function. Only wiring: internal/controller decides.
func runLambda(ctx context.Context, args []string, getenv env, stderr io.Writer) error {
	if help, err := parseNoArgs("lambda", args, stderr); help || err != nil {
		return err
	}
	if getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		return usageError("eipclaim lambda runs as an AWS Lambda function (AWS_LAMBDA_RUNTIME_API is not set): deploy it with deploy/eipclaim-controller.yaml, or run it under the Lambda runtime interface emulator")
	}
	src := getenv("EIPCLAIM_CONFIG")
	if src == "" {
		return usageError("EIPCLAIM_CONFIG is not set: set it in the function's environment to the roles table, such as s3://fleet-config/eipclaim.yaml")
	}
	if err := config.CheckSource(src); err != nil {
		return usageError("EIPCLAIM_CONFIG: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	env, err := awsenv.Load(ctx, awsenv.Options{})
	if err != nil {
		return err
	}
	cfg := env.Config
	if cfg.Region == "" {
		return usageError("no AWS region: Lambda sets AWS_REGION; set it when running elsewhere")
	}
	loader := &source.Loader{S3: s3.NewFromConfig(cfg), Log: log, Retry: (&retry.Retrier{Log: log}).Do}
	c := &controller.Controller{
		EC2:         ec2.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg),
		Route53:     route53.NewFromConfig(cfg),
		S3:          s3.NewFromConfig(cfg),
		Region:      cfg.Region,
		Log:         log,
		Config: func(ctx context.Context) (*config.Config, error) {
			l, err := loader.Load(ctx, source.Request{EnvConfig: src, TableOnly: true})
			if err != nil {
				return nil, err
			}
			return l.Config, nil
		},
	}
	lambda.StartWithOptions(func(ctx context.Context, ev json.RawMessage) (*controller.Result, error) {
		return c.Handle(ctx, ev)
	}, lambda.WithContext(ctx))
	return nil
}
