-- MySQL dump 10.13  Distrib 5.7.42, for Linux (x86_64)
--
-- Host: localhost    Database: sample_platform
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8 */;

--
-- Table structure for table `sample`
--

DROP TABLE IF EXISTS `sample`;
CREATE TABLE `sample` (
  `id` int(11) DEFAULT NULL,
  `sha` text DEFAULT NULL,
  `extension` text DEFAULT NULL,
  `original_name` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_sample` (`id`,`sha`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

LOCK TABLES `sample` WRITE;
/*!40000 ALTER TABLE `sample` DISABLE KEYS */;
INSERT INTO `sample` VALUES (1,'5191a4cfd34a5358d0b3a5e32b1a2f7700541a01db4a28a9aeaf101b4627093d','mp4','clip-1.mp4'),(2,'9ac7cc310615eb6ee4e7eff068e19cd97b38da90f480714772e9644843a690b9','mkv','clip-2.mkv'),(3,'ac3a3cfaed4c91881257c8510cb907a53738eac705ac439e04db1ca3bbf28682','wtv','clip-3.wtv'),(4,'7b9f4fba44b3cccd2773d8baadc1e082fd867518a0af53fbb6413d887ed7058f','ts','clip-4.ts'),(5,'f21ade151b5f9ee3245d80f02acd9e13aff172f16171e43697761c669d5ed2a4','mp4','clip-5.mp4'),(6,'905355cc087375f8e0bf4b9e8775cecc3c3aae8ee085bee5c41c0d8fd1c38c57','mkv','clip-6.mkv'),(7,'3ef18678a328d431845371032d7a4163e56096d15fad78c188d531dd74cfe126','wtv','clip-7.wtv'),(8,'0e55fea3ad537e4cf65fed8ba40384fbb61157b17a17aa6c7a85153fd00a38c9','ts','clip-8.ts'),(9,'202455a4dca33693d6f95a05b04156e840e61e398bded8b121af720dae6d6624','mp4','clip-9.mp4'),(10,'b9cd1c471e47826a558302cc801a28339cb1546f3504067c76f87fab14bd63fb','mkv','clip-10.mkv'),(11,'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff','ts','lost.ts');
/*!40000 ALTER TABLE `sample` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `category`
--

DROP TABLE IF EXISTS `category`;
CREATE TABLE `category` (
  `id` int(11) DEFAULT NULL,
  `name` text DEFAULT NULL,
  `description` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_category` (`id`,`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

LOCK TABLES `category` WRITE;
/*!40000 ALTER TABLE `category` DISABLE KEYS */;
INSERT INTO `category` VALUES (1,'Broadcast','Broadcast captions'),(2,'DVB','DVB subtitles'),(3,'Teletext','Teletext, "page 888"; it\'s old'),(4,'CEA-708',NULL);
/*!40000 ALTER TABLE `category` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `regression_test`
--

DROP TABLE IF EXISTS `regression_test`;
CREATE TABLE `regression_test` (
  `id` int(11) DEFAULT NULL,
  `sample_id` int(11) DEFAULT NULL,
  `command` text DEFAULT NULL,
  `input_type` text DEFAULT NULL,
  `output_type` text DEFAULT NULL,
  `expected_rc` int(11) DEFAULT NULL,
  `active` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_regression_test` (`id`,`sample_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

LOCK TABLES `regression_test` WRITE;
/*!40000 ALTER TABLE `regression_test` DISABLE KEYS */;
INSERT INTO `regression_test` VALUES (1,1,'-latin1','file','file',0,1),(2,2,'-latin1','file','stdout',0,1),(3,3,'-latin1','file','report',0,1),(4,4,'-latin1','file','null',0,1),(5,5,'-708','file','cea708',0,1),(6,6,'-latin1','file','multiprogram',0,1),(7,7,'-latin1','file','tcp',0,1),(8,8,'-latin1','stdin','file',0,1),(9,9,'-latin1','stdin','stdout',0,1),(10,10,'-latin1','stdin','report',0,1),(11,1,'-latin1','stdin','null',0,1),(12,2,'-708','stdin','cea708',0,1),(13,3,'-latin1','stdin','multiprogram',0,1),(14,4,'-latin1','stdin','tcp',0,1),(15,5,'-latin1','udp','file',0,1),(16,6,'-latin1','udp','stdout',0,1),(17,7,'-latin1','udp','report',0,1),(18,8,'-latin1','udp','null',0,1),(19,9,'-708','udp','cea708',0,1),(20,10,'-latin1','udp','multiprogram',0,1),(21,1,'-latin1','file','file',0,1),(22,2,'-fail -latin1','file','file',10,1),(23,3,'-fail -latin1','file','file',10,1),(24,4,'-latin1','file','file',0,0),(25,5,'-latin1','file','file',0,1),(26,6,'-latin1','file','file',0,1),(27,7,'-latin1','file','file',0,1),(28,8,'-latin1','file','file',0,1),(29,1,'-latin1','file','xml',0,1),(30,11,'-latin1','file','file',0,1),(31,2,'-latin1','file','file',0,1),(32,3,'-latin1','udp','tcp',0,1);
/*!40000 ALTER TABLE `regression_test` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `regression_test_category`
--

DROP TABLE IF EXISTS `regression_test_category`;
CREATE TABLE `regression_test_category` (
  `regression_id` int(11) DEFAULT NULL,
  `category_id` int(11) DEFAULT NULL,
  PRIMARY KEY (`regression_id`),
  KEY `ix_regression_test_category` (`regression_id`,`category_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

LOCK TABLES `regression_test_category` WRITE;
/*!40000 ALTER TABLE `regression_test_category` DISABLE KEYS */;
INSERT INTO `regression_test_category` VALUES (1,2),(2,3),(3,4),(3,1),(4,1),(5,2),(6,3),(6,4),(7,4),(8,1),(9,2),(9,3),(10,3),(11,4),(12,1),(12,2),(13,2),(14,3),(15,4),(15,1),(16,1),(17,2),(18,3),(18,4),(19,4),(20,1),(21,2),(21,3),(22,3),(23,4),(24,1),(24,2),(25,2),(26,3),(27,4),(27,1),(28,1);
/*!40000 ALTER TABLE `regression_test_category` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `regression_test_output`
--

DROP TABLE IF EXISTS `regression_test_output`;
CREATE TABLE `regression_test_output` (
  `id` int(11) DEFAULT NULL,
  `regression_id` int(11) DEFAULT NULL,
  `correct` text DEFAULT NULL,
  `correct_extension` text DEFAULT NULL,
  `expected_filename` text DEFAULT NULL,
  `ignore` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_regression_test_output` (`id`,`regression_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

LOCK TABLES `regression_test_output` WRITE;
/*!40000 ALTER TABLE `regression_test_output` DISABLE KEYS */;
INSERT INTO `regression_test_output` VALUES (1,1,'e817d1d794c782076dfb314564da839b21a74ff753e3be13b9fcabf8d3d073f5','.srt','',0),(2,2,'3844d71be284091711ad153ea4bcd632','.txt','_stdout',0),(3,3,'ac27a73acbafe88a0454ad55a768b85d6aa0e225c9f42194f5404175c58a1e6f','.txt','_report',0),(4,4,'f67e5ba2ce5e3455f09e2723719c0d4b5735ca08317993961469f93835df6211','.srt','',0),(5,5,'478255d55f4c168fe6cc977f132963276d65c456d6cad76b58af1b532596fc87','.srt','_1',0),(6,5,'08d58216a161c277a7716f0fa61571c7','.srt','_2',0),(7,6,'c52f7ca5a426568bea01693e80ef855a9b0b18c2beb32e82594555f0ed247293','.srt','_p1',0),(8,6,'9cfbe3bb095e69ecf17323c9546c4e64','.srt','_p2',0),(9,7,'f004947faa9b45040e9f92491a6a34f283990fd807875afb8f618ba421d3ea79','.txt','_tcp',0),(10,8,'e3d26ebd5d17afdadc594a52b3f67cf9','.srt','',0),(11,9,'59f38666247e7d04193042fa4ffd3348261a3f3b129c38fa6f3d734a8c3507fe','.txt','_stdout',0),(12,10,'94e57a91ce3844d1fcb1b06402e411e3','.txt','_report',0),(13,11,'f67e5ba2ce5e3455f09e2723719c0d4b5735ca08317993961469f93835df6211','.srt','',0),(14,12,'9c5307cc994079ee9d7e0c6075b034686bae963dcb3e5888989f002181a11b5a','.srt','_1',0),(15,12,'756141997df65cf86f64dfcdb327f0ab','.srt','_2',0),(16,13,'08a2443e45a4363197c1d16b5cd31c9999cbdc823c5e471099c0c633f162176a','.srt','_p1',0),(17,13,'422b21ebea6a4a2dcd018490d9a473f8','.srt','_p2',0),(18,14,'1fa074d6dc4eb279364c63a1a8f5682f','.txt','_tcp',0),(19,15,'8e990a728b41eaaa62425ee23bc6ef7840800e5791fdf62ae5e8393a70485a0c','.srt','',0),(20,16,'010962f21061d03aa53d62b8652a4ac6','.txt','_stdout',0),(21,17,'ac27a73acbafe88a0454ad55a768b85d6aa0e225c9f42194f5404175c58a1e6f','.txt','_report',0),(22,18,'f67e5ba2ce5e3455f09e2723719c0d4b5735ca08317993961469f93835df6211','.srt','',0),(23,19,'424f8462834035aca870d527614e25a1287a3bb8846cc6264bb7d7fc6c286f54','.srt','_1',0),(24,19,'e11891e11ad7da605b11784831c1896c','.srt','_2',0),(25,20,'d7bb838aaa22923ad87b9c236bc204e0bdbcaa7167fc32406adf89065f0dd803','.srt','_p1',0),(26,20,'b75ae90111897b4031b9e2a17a974266','.srt','_p2',0),(27,21,'e817d1d794c782076dfb314564da839b21a74ff753e3be13b9fcabf8d3d073f5','.srt','',0),(28,22,'3844d71be284091711ad153ea4bcd632','.srt','',0),(29,23,'2752fdc34b710ba06c3af083d59ec5182ec530e7a554a7a5d1328122d54a33ae','.srt','',0),(30,24,'1fa074d6dc4eb279364c63a1a8f5682f','.srt','',0),(31,25,'8e990a728b41eaaa62425ee23bc6ef7840800e5791fdf62ae5e8393a70485a0c','.srt','',0),(32,26,'010962f21061d03aa53d62b8652a4ac6','.srt','',0),(33,26,'cd293be6cea034bd45a0352775a219ef5dc7825ce55d1f7dae9762d80ce64411','.log','_debug',1),(34,27,'f004947faa9b45040e9f92491a6a34f283990fd807875afb8f618ba421d3ea79','.srt','',0),(35,28,'e3d26ebd5d17afdadc594a52b3f67cf9','.srt','',0),(36,30,'2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881','.srt','',0),(37,31,'not-a-hash','.srt','',0),(38,32,'2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881','.txt','_tcp',0);
/*!40000 ALTER TABLE `regression_test_output` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `regression_test_output_files`
--

DROP TABLE IF EXISTS `regression_test_output_files`;
CREATE TABLE `regression_test_output_files` (
  `id` int(11) DEFAULT NULL,
  `file_hashes` text DEFAULT NULL,
  `regression_test_output_id` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_regression_test_output_files` (`id`,`file_hashes`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

LOCK TABLES `regression_test_output_files` WRITE;
/*!40000 ALTER TABLE `regression_test_output_files` DISABLE KEYS */;
INSERT INTO `regression_test_output_files` VALUES (1,'24d5a4fd5202ba5797683cd069644f7e8c5c5f327f184128a05320fbc02cfcff',27),(2,'f26b81299dcf472684a317142cc9757f',27),(3,'24d5a4fd5202ba5797683cd069644f7e8c5c5f327f184128a05320fbc02cfcff',31),(4,'f26b81299dcf472684a317142cc9757f',31);
/*!40000 ALTER TABLE `regression_test_output_files` ENABLE KEYS */;
UNLOCK TABLES;

