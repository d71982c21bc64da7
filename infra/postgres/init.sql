-- One PostgreSQL for the local stack: Prefect's database, MLflow's backend store and a demo warehouse.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE warehouse;
