fn main() {
    snaplabel_web::start();
}
